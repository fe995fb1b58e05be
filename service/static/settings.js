// The wording editor: placeholder chips that put {name} where the cursor is, "Reset to ours",
// and a live preview of a clinic's own wording: the text as a client with long values would get
// it, its SMS segment count, and every problem that would keep it from being saved (the server
// words each in the page's language).
(function () {
  const token = document.querySelector("input[name=csrf_token]");
  const form = document.getElementById("wording-form");
  let timer;
  const line = (tag, className, text) => {
    const node = document.createElement(tag); node.className = className; node.textContent = text;
    return node;
  };
  const preview = (area) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      fetch("/settings/preview", {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": token.value},
        body: JSON.stringify({kind: area.dataset.kind, text: area.value,
                              language: form ? form.dataset.language : "en"}),
      }).then((r) => r.json()).then((p) => {
        const box = document.getElementById(area.dataset.preview);
        box.replaceChildren(...(p.problems || []).map((text) => line("p", "error", text)));
        if (p.body === undefined) return;
        box.append(line("pre", "preview", p.body),
                   line("p", "muted", p.summary));
      });
    }, 250);
  };
  document.querySelectorAll("textarea[data-preview]").forEach((area) => {
    area.addEventListener("input", () => preview(area));
  });
  document.querySelectorAll("button[data-insert]").forEach((chip) => {
    chip.addEventListener("click", () => {
      const area = document.getElementById(chip.dataset.target);
      area.setRangeText(chip.dataset.insert, area.selectionStart, area.selectionEnd, "end");
      area.focus();
      preview(area);
    });
  });
  document.querySelectorAll("button[data-reset]").forEach((button) => {
    button.addEventListener("click", () => {
      const area = document.getElementById(button.dataset.reset);
      area.value = area.dataset.ours;
      preview(area);
    });
  });
})();
