// Live preview of a clinic's own wording: the text as a client with long values would get it,
// its SMS segment count, and every problem that would keep it from being saved.
(function () {
  const token = document.querySelector("input[name=csrf_token]");
  let timer;
  const line = (tag, className, text) => {
    const node = document.createElement(tag); node.className = className; node.textContent = text;
    return node;
  };
  document.querySelectorAll("textarea[data-preview]").forEach((area) => {
    area.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        fetch("/settings/preview", {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRFToken": token.value},
          body: JSON.stringify({kind: area.dataset.kind, text: area.value}),
        }).then((r) => r.json()).then((p) => {
          const box = document.getElementById(area.dataset.preview);
          box.replaceChildren(...(p.problems || []).map((text) => line("p", "error", text)));
          if (p.body === undefined) return;
          box.append(line("pre", "preview", p.body),
                     line("p", "muted", p.segments + " segment(s), " + p.encoding));
        });
      }, 250);
    });
  });
})();
