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

// Onboarding step 2: show the prices of the chosen billing cycle only. Without JavaScript
// both prices stay visible, each labelled "/ month" or "/ year".
function usherShowCyclePrices(form) {
  const chosen = form.querySelector('input[name="billing_cycle"]:checked');
  if (!chosen) return;
  form.querySelectorAll(".price[data-cycle]").forEach(function (price) {
    price.hidden = price.dataset.cycle !== chosen.value;
  });
}

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("plan-form");
  if (!form) return;
  form.querySelectorAll('input[name="billing_cycle"]').forEach(function (radio) {
    radio.addEventListener("change", function () { usherShowCyclePrices(form); });
  });
  usherShowCyclePrices(form);
});

// Email verification for the checkout (step 4): thin wrappers over the JSON endpoints.
// Each resolves to {ok, status, data}; data.error holds the message to show when !ok.
function usherSendCode(email) {
  return usherPostJson("/onboarding/checkout/send-code/", { email: email });
}

function usherVerifyCode(email, code) {
  return usherPostJson("/onboarding/checkout/verify-code/", { email: email, code: code });
}
