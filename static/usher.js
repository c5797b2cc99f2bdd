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
      if (!usherFollowCheckout(result.data, form.dataset.publishableKey, status,
                               form.closest(".checkout-layout"))) fail();
    });
  });
}

// Embedded mode: Stripe.js (loaded by the page only then) shows the payment form in place of
// `hide`, in #checkout-embedded.
async function usherMountEmbeddedCheckout(publishableKey, clientSecret, status, hide) {
  const target = document.getElementById("checkout-embedded");
  if (typeof Stripe !== "function" || !publishableKey) {
    status.textContent = "The payment form could not be loaded. Please reload the page and try again.";
    return;
  }
  try {
    const stripe = Stripe(publishableKey);
    const checkout = await stripe.initEmbeddedCheckout({
      fetchClientSecret: function () { return Promise.resolve(clientSecret); },
    });
    hide.hidden = true;
    target.hidden = false;
    checkout.mount(target);
    target.focus();
  } catch (e) {
    status.textContent = "The payment form could not be loaded. Please reload the page and try again.";
  }
}

// Where a checkout endpoint's answer leads: Stripe's hosted page, or the embedded form.
function usherFollowCheckout(data, publishableKey, status, hide) {
  if (data.url) {
    window.location.assign(data.url);
    return true;
  }
  if (data.clientSecret) {
    usherMountEmbeddedCheckout(publishableKey, data.clientSecret, status, hide);
    return true;
  }
  return false;
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

// The recovery page: send a code for a username or email, verify it, then show what the
// account can do (subscribe again, log in, or sign up anew). Enter sends the code, or
// verifies it once one was asked for.
function usherRecovery(form) {
  const identifier = document.getElementById("recovery-identifier");
  const code = document.getElementById("recovery-code");
  const sendButton = document.getElementById("recovery-send-code");
  const verifyButton = document.getElementById("recovery-verify");
  const status = document.getElementById("recovery-status");
  const progress = document.getElementById("recovery-progress");
  const outcomes = {
    recovered: document.getElementById("recovery-recovered"),
    active: document.getElementById("recovery-active"),
    closed: document.getElementById("recovery-closed"),
  };
  const fieldErrors = {
    identifier: document.getElementById("recovery-identifier-error"),
    code: document.getElementById("recovery-code-error"),
  };
  let codeRequested = false;
  let verified = false; // a code is single use: never send the same one twice
  let resendTimer = null;

  function say(text) { progress.textContent = text || ""; status.textContent = ""; }
  function fieldError(name, text) {
    const input = name === "code" ? code : identifier;
    fieldErrors[name].textContent = text || "";
    fieldErrors[name].hidden = !text;
    if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  }
  function fail(name, text) {
    progress.textContent = "";
    status.textContent = text || "Something went wrong. Please try again.";
    if (name) { fieldError(name, text); (name === "code" ? code : identifier).focus(); }
  }
  function countdown(seconds) {
    window.clearInterval(resendTimer);
    let left = seconds;
    sendButton.disabled = true;
    sendButton.textContent = "Resend in " + left + " s";
    resendTimer = window.setInterval(function () {
      left -= 1;
      if (left > 0) { sendButton.textContent = "Resend in " + left + " s"; return; }
      window.clearInterval(resendTimer);
      sendButton.disabled = false;
      sendButton.textContent = "Resend code";
    }, 1000);
  }
  function show(kind) {
    Object.keys(outcomes).forEach(function (k) { outcomes[k].hidden = k !== kind; });
    if (kind) outcomes[kind].focus();
  }
  function showPlan(data) {
    document.getElementById("recovery-username").textContent = data.username || "";
    document.getElementById("recovery-until").textContent = data.until || "";
    const body = document.querySelector("#recovery-plan tbody");
    body.replaceChildren();
    const lines = (data.plan && data.plan.lines) || [];
    lines.forEach(function (line) {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = line.name + (line.quantity > 1 ? " × " + line.quantity : "");
      const price = document.createElement("td");
      price.textContent = line.label;
      row.append(name, price);
      body.append(row);
    });
    document.getElementById("recovery-total").textContent = (data.plan && data.plan.total_label) || "";
    document.getElementById("recovery-plan-gone").hidden = !!data.plan;
    document.getElementById("recovery-resubscribe").hidden = !data.plan;
  }

  async function sendCode() {
    fieldError("identifier", "");
    if (!identifier.value.trim()) { fail("identifier", "Enter the username or the email address of your account."); return; }
    sendButton.disabled = true;
    say("Sending…");
    try {
      const result = await usherPostJson("/recovery/send-code/", { identifier: identifier.value });
      if (result.ok) {
        codeRequested = true;
        say(result.data.message);
        countdown(result.data.resend_after || 60);
        code.focus();
        return;
      }
      if (result.status === 429 && result.data.retry_after) countdown(result.data.retry_after);
      else sendButton.disabled = false;
      fail(result.status === 400 ? "identifier" : null, result.data.error);
    } catch (e) {
      sendButton.disabled = false;
      fail(null, "Network error. Please try again.");
    }
  }

  async function verify() {
    if (verified || verifyButton.disabled) return;
    fieldError("code", "");
    if (!/^[0-9]{6}$/.test(code.value.trim())) { fail("code", "Enter the 6-digit code from the email."); return; }
    verifyButton.disabled = true;
    say("Checking…");
    try {
      const result = await usherPostJson("/recovery/verify-code/", { identifier: identifier.value, code: code.value.trim() });
      if (!result.ok) { fail("code", result.data.error); return; }
      verified = true;
      say("");
      // Done with codes: the form stays for reference, its controls step aside.
      window.clearInterval(resendTimer);
      identifier.readOnly = true;
      code.readOnly = true;
      sendButton.hidden = true;
      verifyButton.hidden = true;
      if (result.data.recovered) { showPlan(result.data); show("recovered"); }
      else if (result.data.active) show("active");
      else if (result.data.closed) {
        document.getElementById("recovery-closed-on").textContent = result.data.closed_on || "";
        show("closed");
      }
    } catch (e) {
      fail(null, "Network error. Please try again.");
    } finally {
      verifyButton.disabled = false;
    }
  }

  sendButton.addEventListener("click", sendCode);
  verifyButton.addEventListener("click", verify);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (codeRequested || code.value.trim()) verify(); else sendCode();
  });
  code.addEventListener("input", function () {
    if (/^[0-9]{6}$/.test(code.value.trim())) verify();
  });

  const resubscribe = document.getElementById("recovery-resubscribe");
  const checkoutStatus = document.getElementById("recovery-checkout-status");
  resubscribe.addEventListener("click", async function () {
    resubscribe.disabled = true;
    checkoutStatus.textContent = "";
    try {
      const result = await usherPostJson("/recovery/checkout-session/", {});
      if (result.ok && usherFollowCheckout(result.data, form.dataset.publishableKey, checkoutStatus, outcomes.recovered)) return;
      checkoutStatus.textContent = result.data.error || "Something went wrong. Please try again.";
    } catch (e) {
      checkoutStatus.textContent = "Network error. Please try again.";
    }
    resubscribe.disabled = false;
  });
}

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("recovery-form");
  if (form) usherRecovery(form);
});
