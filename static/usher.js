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

// Onboarding step 4: validate → send code → verify → checkout session → Stripe. Errors go to
// the role="alert" line (#checkout-status) and next to their field; progress to #checkout-progress.
function usherCheckout(form) {
  const status = document.getElementById("checkout-status");
  const progress = document.getElementById("checkout-progress");
  const fields = {
    last_name: form.elements.last_name,
    username: form.elements.username,
    email: form.elements.email,
  };
  const code = form.elements.code;
  const sendButton = document.getElementById("checkout-send-code");
  const verifyButton = document.getElementById("checkout-verify");
  const payButton = document.getElementById("checkout-pay");
  // The server remembers a verified address for this browser session (e.g. back from Stripe).
  let verifiedEmail = form.dataset.verifiedEmail || null;
  if (verifiedEmail !== null && fields.email.value.trim().toLowerCase() !== verifiedEmail) verifiedEmail = null;

  function say(text) { progress.textContent = text || ""; status.textContent = ""; }
  function fail(text) { progress.textContent = ""; status.textContent = text || "Something went wrong. Please try again."; }
  function clearErrors() {
    Object.keys(fields).forEach(function (name) {
      const input = fields[name];
      const error = document.getElementById(input.id + "-error");
      input.removeAttribute("aria-invalid");
      if (error) { error.textContent = ""; error.hidden = true; }
    });
  }
  // Marks fields from {field: message}; returns the first message.
  function showErrors(errors) {
    let first = null;
    Object.keys(errors || {}).forEach(function (name) {
      const input = fields[name];
      if (!input) return;
      const error = document.getElementById(input.id + "-error");
      input.setAttribute("aria-invalid", "true");
      if (error) { error.textContent = errors[name]; error.hidden = false; }
      if (!first) { first = errors[name]; input.focus(); }
    });
    return first;
  }
  function required(names) {
    const errors = {};
    names.forEach(function (name) {
      if (!fields[name].value.trim()) errors[name] = "This field is required.";
    });
    return errors;
  }
  async function busy(button, work) {
    button.disabled = true;
    try { await work(); } catch (e) { fail("Network error. Please try again."); } finally { button.disabled = false; }
  }

  fields.email.addEventListener("input", function () {
    if (verifiedEmail !== null && fields.email.value.trim().toLowerCase() !== verifiedEmail) {
      verifiedEmail = null;
      say("");
    }
  });

  sendButton.addEventListener("click", function () {
    busy(sendButton, async function () {
      clearErrors();
      const missing = required(["username", "email"]);
      if (Object.keys(missing).length) { fail(showErrors(missing)); return; }
      say("Checking your details…");
      const check = await usherPostJson("/onboarding/checkout/validate/", {
        email: fields.email.value, username: fields.username.value });
      if (!check.ok) { fail(check.data.error); return; }
      if (!check.data.valid) { fail(showErrors(check.data.errors)); return; }
      const sent = await usherSendCode(fields.email.value);
      if (!sent.ok) {
        fail(sent.data.errors ? showErrors(sent.data.errors) : sent.data.error);
        return;
      }
      say("We sent a 6-digit code to " + fields.email.value.trim() + ". Enter it below.");
      code.focus();
    });
  });

  verifyButton.addEventListener("click", function () {
    busy(verifyButton, async function () {
      clearErrors();
      if (!/^\d{6}$/.test(code.value.trim())) { fail("Enter the 6-digit code from the email."); code.focus(); return; }
      const result = await usherVerifyCode(fields.email.value, code.value.trim());
      if (result.ok && result.data.verified) {
        verifiedEmail = fields.email.value.trim().toLowerCase();
        say("Email verified. You can continue to payment.");
        payButton.focus();
      } else {
        fail(result.data.error);
        code.focus();
      }
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    busy(payButton, async function () {
      clearErrors();
      const missing = required(["last_name", "username", "email"]);
      if (Object.keys(missing).length) { fail(showErrors(missing)); return; }
      if (verifiedEmail === null) { fail("Please verify your email address first."); code.focus(); return; }
      say("Preparing your payment…");
      const result = await usherPostJson("/onboarding/checkout/session/", {
        email: fields.email.value, last_name: fields.last_name.value, username: fields.username.value });
      if (!result.ok) {
        fail(result.data.errors ? showErrors(result.data.errors) || result.data.error : result.data.error);
        return;
      }
      if (result.data.url) {
        window.location.assign(result.data.url);
      } else if (result.data.clientSecret) {
        usherMountEmbeddedCheckout(form, result.data.clientSecret);
      } else {
        fail();
      }
    });
  });
}

// Embedded mode: Stripe.js (loaded by the page only then) shows the payment form in place.
async function usherMountEmbeddedCheckout(form, clientSecret) {
  const status = document.getElementById("checkout-status");
  const target = document.getElementById("checkout-embedded");
  if (typeof Stripe !== "function" || !form.dataset.publishableKey) {
    status.textContent = "The payment form could not be loaded. Please reload the page and try again.";
    return;
  }
  try {
    const stripe = Stripe(form.dataset.publishableKey);
    const checkout = await stripe.initEmbeddedCheckout({
      fetchClientSecret: function () { return Promise.resolve(clientSecret); },
    });
    form.closest(".checkout-layout").hidden = true;
    target.hidden = false;
    checkout.mount(target);
    target.focus();
  } catch (e) {
    status.textContent = "The payment form could not be loaded. Please reload the page and try again.";
  }
}

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("checkout-form");
  if (form) usherCheckout(form);
});

// Success page: poll provisioning progress until the account is ready, and the
// "Resend password email" button.
function usherPollProvisioning(box) {
  const message = document.getElementById("provisioning-message");
  const login = document.getElementById("provisioning-login");
  let delay = 2000;
  async function poll() {
    try {
      const response = await fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const data = await response.json();
      if (response.ok) {
        box.dataset.state = data.state;
        if (message.textContent !== data.message) message.textContent = data.message;
        if (data.ready) { login.hidden = false; return; }
        if (data.state === "waiting_capacity") delay = 15000;
      }
    } catch (e) {
      delay = Math.min(delay * 2, 30000);
    }
    window.setTimeout(poll, delay);
  }
  if (box.dataset.state !== "ready") window.setTimeout(poll, delay);
}

document.addEventListener("DOMContentLoaded", function () {
  const box = document.getElementById("provisioning");
  if (box) usherPollProvisioning(box);
  const form = document.getElementById("resend-password-form");
  if (!form) return;
  const status = document.getElementById("resend-status");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const result = await usherPostJson(form.action, { email: form.dataset.email });
      usherShowStatus(status, result.ok ? result.data.message : (result.data.error || "Something went wrong. Please try again."), !result.ok);
    } catch (e) {
      usherShowStatus(status, "Network error. Please try again.", true);
    } finally {
      button.disabled = false;
    }
  });
});
