// The "Log in as user" button of the user page, by fetch: the README's
// "A JavaScript front end" recipe. Loaded from /static, so a CSP with
// script-src 'self' allows it; the page holds no inline script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("fetch-switch");
  if (!button) {
    return;
  }
  const output = document.getElementById("fetch-result");
  button.addEventListener("click", async () => {
    const token = document.querySelector('meta[name="loginas-csrf"]').content;
    const next = button.dataset.next;
    const res = await fetch(button.dataset.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Accept": "application/json", "Content-Type": "application/json", "X-Loginas-CSRF": token},
      body: JSON.stringify({reason: document.getElementById("fetch-reason").value, next: next}),
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok && body.impersonating) {
      window.location.assign(body.redirect);
      return;
    }
    output.textContent = body.error || `${res.status} ${res.statusText}`;
  });
});
