// The client list searches as you type: the same GET the form sends on Enter, its results swapped
// in (the page works the same without this file).
(function () {
  const form = document.getElementById("client-search");
  const results = document.getElementById("results");
  if (!form || !results) return;
  let timer, latest = 0;
  function refresh() {
    const url = form.action + "?" + new URLSearchParams(new FormData(form)).toString();
    const asked = ++latest;
    fetch(url, {credentials: "same-origin"})
      .then((r) => r.text())
      .then((html) => {
        if (asked !== latest) return;  // a later keystroke's answer wins
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("results");
        if (!fresh) return;
        results.replaceChildren(...fresh.childNodes);
        history.replaceState(null, "", url);
      });
  }
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
})();
