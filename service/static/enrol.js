// The enrol form's helpers; the form works without them.
// An appointment preset fills the appointment field (the server reads either); typing another
// time there clears the preset.
(function () {
  const field = document.getElementById("next_appointment");
  const presets = document.querySelectorAll("input[name=appointment_preset]");
  if (!field) return;
  presets.forEach((preset) => preset.addEventListener("change", () => { field.value = preset.value; }));
  field.addEventListener("input", () => presets.forEach((preset) => {
    preset.checked = preset.value === field.value;
  }));
})();

// As-you-type client lookup: pick an existing client to fill their details and consent
// (consent given before stays given unless they withdrew it).
(function () {
  const name = document.getElementById("name");
  const phone = document.getElementById("phone");
  const box = document.getElementById("suggestions");
  if (!name || !box) return;
  const token = document.querySelector("input[name=csrf_token]").value;
  let timer;
  function fill(client) {
    name.value = client.name;
    phone.value = client.phone || "";
    document.getElementById("email").value = client.email || "";
    document.getElementById("language").value = client.language;
    document.getElementById("sms_consent").checked = client.sms_consent;
    box.hidden = true;
  }
  function lookup(q) {
    fetch("/clients/search", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify({q: q}),
    })
      .then((r) => r.json())
      .then((clients) => {
        box.replaceChildren();
        clients.forEach((client) => {
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = client.name + (client.phone ? " · " + client.phone : "");
          b.addEventListener("click", () => fill(client));
          box.appendChild(b);
        });
        box.hidden = clients.length === 0;
      });
  }
  [name, phone].forEach((input) => input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (q.length < 2) { box.hidden = true; return; }
    timer = setTimeout(() => lookup(q), 150);
  }));
})();
