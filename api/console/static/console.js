// The staff console's only script: small progressive enhancements. Every form works without it.
"use strict";

// Decision and review forms: preview the public text as it is typed, and ask the server (a dry
// run of the same decision) whether the policy gate would let it through, before it is sent.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-preview-source]").forEach((input) => {
    const target = document.getElementById(input.dataset.previewSource);
    const update = () => { if (target) target.textContent = input.value.trim() || target.dataset.empty || ""; };
    input.addEventListener("input", update);
    update();
  });

  const form = document.querySelector("form[data-gate-check]");
  if (!form) return;
  const panel = document.getElementById("gate-check");
  const statusLabel = document.getElementById("preview-status");
  let pending = null;
  const check = () => {
    if (statusLabel) {
      const select = form.querySelector("select[name=status]");
      statusLabel.textContent = select.options[select.selectedIndex].text;
      statusLabel.className = "badge " + select.value;
    }
    if (pending) pending.abort();
    pending = new AbortController();
    fetch(form.dataset.gateCheck, {
      method: "POST", body: new FormData(form), signal: pending.signal,
      headers: { "X-Requested-With": "fetch" }, credentials: "same-origin",
    }).then((response) => response.text()).then((html) => {
      if (panel) panel.innerHTML = html;
    }).catch(() => {});
  };
  form.querySelectorAll("select, input[type=checkbox]").forEach((el) => el.addEventListener("change", check));
  form.querySelectorAll("textarea").forEach((el) => el.addEventListener("change", check));
  check();
});
