// The reply's live segment count: the server renders it as the client will get it, counts it
// (one rule, service/messaging/sms_segments.py) and says so in the page's language.
(function () {
  const area = document.querySelector("textarea[data-preview]");
  if (!area) return;
  const token = document.querySelector("input[name=csrf_token]");
  const out = document.querySelector("[data-testid=segments]");
  let timer;
  area.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      fetch(area.dataset.preview, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": token.value},
        body: JSON.stringify({text: area.value}),
      }).then((r) => r.json()).then((p) => {
        out.textContent = p.problem && area.value ? p.problem : p.summary;
      });
    }, 250);
  });
})();
