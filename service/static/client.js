// Shows the pain slider's value next to its label as the client moves it.
(function () {
  const slider = document.getElementById("pain");
  const value = document.getElementById("pain-value");
  if (!slider || !value) return;
  const show = () => { value.textContent = slider.value; };
  slider.addEventListener("input", show);
  show();
})();
