// Live preview of a clinic's own wording: the rendered text and its SMS segment count.
(function () {
  const token = document.querySelector("input[name=csrf_token]");
  let timer;
  document.querySelectorAll("textarea[data-preview]").forEach((area) => {
    area.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        fetch("/settings/preview", {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRFToken": token.value},
          body: JSON.stringify({text: area.value}),
        }).then((r) => r.json()).then((p) => {
          const box = document.getElementById(area.dataset.preview);
          box.replaceChildren();
          if (p.error) {
            const e = document.createElement("p"); e.className = "error"; e.textContent = p.error;
            box.appendChild(e);
            return;
          }
          const pre = document.createElement("pre"); pre.className = "preview"; pre.textContent = p.body;
          const info = document.createElement("p"); info.className = "muted";
          info.textContent = p.segments + " segment(s), " + p.encoding;
          box.append(pre, info);
        });
      }, 250);
    });
  });
})();
