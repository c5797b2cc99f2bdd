// Usher's small front-end helpers: JSON calls with the CSRF token, and the waitlist form.
// Plain JavaScript, no build step.
"use strict";

function usherCsrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function usherPostJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": usherCsrfToken() },
    body: JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  return { ok: response.ok, status: response.status, data: data };
}

function usherShowStatus(element, text, isError) {
  element.textContent = text;
  element.classList.toggle("error", !!isError);
  element.classList.toggle("ok", !isError);
}

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("waitlist-form");
  if (!form) return;
  const status = document.getElementById("waitlist-status");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const result = await usherPostJson(form.action, { email: form.email.value });
      if (result.ok) {
        usherShowStatus(status, result.data.message, false);
      } else {
        usherShowStatus(status, result.data.error || "Something went wrong. Please try again.", true);
        form.email.setAttribute("aria-invalid", "true");
      }
    } catch (e) {
      usherShowStatus(status, "Network error. Please try again.", true);
    } finally {
      button.disabled = false;
    }
  });
});
