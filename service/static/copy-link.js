// Copy the client's page link: the button appears only with script (without it, the read-only
// input is there to select).
(function () {
  const input = document.getElementById("page-link");
  const button = document.getElementById("copy-link");
  if (!input || !button) return;
  button.hidden = false;
  input.addEventListener("focus", () => input.select());
  button.addEventListener("click", () => {
    input.select();
    const done = () => { button.textContent = button.dataset.copied; };  // in the page's language
    if (navigator.clipboard) {
      navigator.clipboard.writeText(input.value).then(done, () => document.execCommand("copy") && done());
    } else if (document.execCommand("copy")) {
      done();
    }
  });
})();
