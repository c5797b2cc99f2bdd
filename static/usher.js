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

// The running total in the plan step's bottom bar: the checked plan and add-ons at the chosen
// cycle (the server recomputes the order at the checkout; this is only what the visitor sees).
function usherShowPlanTotal(form) {
  const cycle = form.querySelector('input[name="billing_cycle"]:checked');
  const box = document.getElementById("plan-total");
  const out = document.getElementById("plan-total-amount");
  if (!cycle || !box || !out) return;
  let total = 0, currency = null, mixed = false;
  form.querySelectorAll('input[name="plan"]:checked, input[name="addons"]:checked').forEach(function (input) {
    const card = input.closest(".product-card");
    const price = card && card.querySelector('.price[data-cycle="' + cycle.value + '"]');
    if (!price) return;
    if (currency && currency !== price.dataset.currency) mixed = true;
    currency = price.dataset.currency;
    total += Number(price.dataset.amount);
  });
  if (!currency || mixed) { box.hidden = true; return; }
  let money;
  try {
    money = new Intl.NumberFormat("en-US", { style: "currency", currency: currency }).format(
      total / Math.pow(10, new Intl.NumberFormat("en-US", { style: "currency", currency: currency }).resolvedOptions().maximumFractionDigits));
  } catch (e) { box.hidden = true; return; }
  out.textContent = money + (cycle.value === "annual" ? " / year" : " / month");
  box.hidden = false;
}

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("plan-form");
  if (!form) return;
  form.querySelectorAll('input[name="billing_cycle"]').forEach(function (radio) {
    radio.addEventListener("change", function () { usherShowCyclePrices(form); });
  });
  form.addEventListener("change", function () { usherShowPlanTotal(form); });
  usherShowCyclePrices(form);
  usherShowPlanTotal(form);
});

// Helpers shared by the checkout (step 4) and the recovery page.

// Shows text (or nothing) as the error of input: in #<input id>-error, which the input's
// aria-describedby names, with aria-invalid set while there is one.
function usherFieldError(input, text) {
  const error = document.getElementById(input.id + "-error");
  if (error) { error.textContent = text || ""; error.hidden = !text; }
  if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
}

// A resend button that waits: disabled and labelled label(seconds left) until the server's
// limit has passed, then enabled as doneLabel.
function usherCountdown(button, seconds, label, doneLabel) {
  usherCountdownStop(button, null);
  let left = Math.max(1, Math.ceil(Number(seconds) || 0));
  button.disabled = true;
  button.textContent = label(left);
  button.usherTimer = window.setInterval(function () {
    left -= 1;
    if (left > 0) button.textContent = label(left);
    else usherCountdownStop(button, doneLabel);
  }, 1000);
}

function usherCountdownStop(button, doneLabel) {
  if (button.usherTimer) window.clearInterval(button.usherTimer);
  button.usherTimer = null;
  if (doneLabel === null) return;
  button.disabled = false;
  button.textContent = doneLabel;
}

// A one-time-code input: keeps digits only (so "123 456" or "123-456" pasted works) and
// calls complete() once it holds 6 of them.
function usherCodeInput(input, complete) {
  input.addEventListener("input", function () {
    const digits = input.value.replace(/\D/g, "").slice(0, 6);
    if (digits !== input.value) input.value = digits;
    if (digits.length === 6) complete();
  });
}

// Email verification for the checkout (step 4): thin wrappers over the JSON endpoints.
// Each resolves to {ok, status, data}; data.error holds the message to show when !ok.
function usherSendCode(email) {
  return usherPostJson("/onboarding/checkout/send-code/", { email: email });
}

function usherVerifyCode(email, code) {
  return usherPostJson("/onboarding/checkout/verify-code/", { email: email, code: code });
}

// Onboarding step 4: validate → send code → verify → checkout session → Stripe. Errors go
// next to their field (aria-invalid, aria-describedby) and to the role="alert" line
// (#checkout-status); progress to #checkout-progress. Enter in the email field sends the
// code, Enter in the code field (or its sixth digit) verifies it. The typed fields are kept
// in the session (/onboarding/checkout/fields/) so that a reload or Back shows them again.
// The words shown come from the page's <template id="checkout-messages">.
function usherCheckout(form) {
  const messages = document.getElementById("checkout-messages");
  function msg(key, values) {
    const node = messages && messages.content.querySelector('[data-msg="' + key + '"]');
    let text = node ? node.textContent.trim() : "";
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
    return text;
  }
  const status = document.getElementById("checkout-status");
  const progress = document.getElementById("checkout-progress");
  const fields = {
    last_name: form.elements.last_name,
    username: form.elements.username,
    email: form.elements.email,
  };
  const order = ["last_name", "username", "email"]; // the page's order, for focus
  const code = form.elements.code;
  const codeGroup = document.getElementById("checkout-code-group");
  const sendButton = document.getElementById("checkout-send-code");
  const verifyButton = document.getElementById("checkout-verify");
  const payButton = document.getElementById("checkout-pay");
  const verifiedNote = document.getElementById("checkout-email-verified");
  const changeButton = document.getElementById("checkout-change-email");
  // The server remembers a verified address for this browser session (e.g. back from Stripe).
  let verifiedEmail = form.dataset.verifiedEmail || null;
  let codeRequested = false;
  let verifying = false; // a code is single use: never send the same one twice

  function say(text) { progress.textContent = text || ""; status.textContent = ""; }
  function fail(text) { progress.textContent = ""; status.textContent = text || msg("failed"); }
  function clearErrors() {
    order.forEach(function (name) { usherFieldError(fields[name]); });
    usherFieldError(code);
  }
  // Marks fields from {field: message} (and "code"); focus goes to the first invalid field
  // in the page's order. Returns its message.
  function showErrors(errors) {
    let first = null;
    order.concat(["code"]).forEach(function (name) {
      const text = errors && errors[name];
      const input = name === "code" ? code : fields[name];
      if (!text) return;
      usherFieldError(input, text);
      if (!first) { first = text; input.focus(); }
    });
    return first;
  }
  function required(names) {
    const errors = {};
    names.forEach(function (name) {
      if (!fields[name].value.trim()) errors[name] = msg("required");
    });
    return errors;
  }
  function failOn(errors) {
    const first = showErrors(errors);
    fail(first);
    return !!first;
  }
  async function guarded(work) {
    try { await work(); } catch (e) { fail(msg("network")); }
  }

  // Keeping what was typed, one field at a time (never the code).
  function keep(names) {
    const body = {};
    names.forEach(function (name) { body[name] = fields[name].value; });
    usherPostJson("/onboarding/checkout/fields/", body).catch(function () {});
  }
  order.forEach(function (name) {
    fields[name].addEventListener("change", function () { keep([name]); });
  });

  function lock(email) {
    verifiedEmail = email;
    fields.email.readOnly = true;
    sendButton.hidden = true;
    usherCountdownStop(sendButton, null);
    verifiedNote.hidden = false;
    codeGroup.hidden = true;
    code.value = "";
  }
  function unlock() {
    verifiedEmail = null;
    codeRequested = false;
    fields.email.readOnly = false;
    verifiedNote.hidden = true;
    codeGroup.hidden = false;
    sendButton.hidden = false;
    usherCountdownStop(sendButton, msg("send"));
  }

  async function sendCode() {
    if (verifiedEmail !== null || sendButton.disabled) return;
    clearErrors();
    if (failOn(required(["username", "email"]))) return;
    sendButton.disabled = true;
    try {
      keep(order);
      say(msg("checking"));
      const check = await usherPostJson("/onboarding/checkout/validate/", {
        email: fields.email.value, username: fields.username.value });
      if (!check.ok) { sendButton.disabled = false; fail(check.data.error); return; }
      if (!check.data.valid) { sendButton.disabled = false; failOn(check.data.errors); return; }
      say(msg("sending"));
      const sent = await usherSendCode(fields.email.value);
      if (sent.ok) {
        codeRequested = true;
        usherCountdown(sendButton, sent.data.resend_after || 60,
                       function (n) { return msg("resend_in", { n: n }); }, msg("resend"));
        say(msg("sent", { email: fields.email.value.trim() }));
        code.focus();
        return;
      }
      if (sent.status === 429 && sent.data.retry_after) {
        codeRequested = true;
        usherCountdown(sendButton, sent.data.retry_after,
                       function (n) { return msg("resend_in", { n: n }); }, msg("resend"));
      } else {
        sendButton.disabled = false;
      }
      if (sent.data.errors) failOn(sent.data.errors);
      else failOn({ email: sent.data.error || msg("failed") });
    } catch (e) {
      sendButton.disabled = false;
      fail(msg("network"));
    }
  }

  async function verify() {
    if (verifying || verifiedEmail !== null) return;
    usherFieldError(code);
    const digits = code.value.replace(/\D/g, "");
    if (!/^\d{6}$/.test(digits)) { failOn({ code: msg("code_format") }); return; }
    verifying = true;
    verifyButton.disabled = true;
    try {
      say(msg("code_checking"));
      const result = await usherVerifyCode(fields.email.value, digits);
      if (result.ok && result.data.verified) {
        lock(fields.email.value.trim().toLowerCase());
        say(msg("verified"));
        const missing = order.filter(function (name) { return !fields[name].value.trim(); });
        (missing.length ? fields[missing[0]] : payButton).focus();
        return;
      }
      let text = result.data.error || msg("failed");
      if (typeof result.data.attempts_left === "number" && /Incorrect/i.test(result.data.error || "")) {
        const n = result.data.attempts_left;
        text = msg(n === 1 ? "attempt_left" : n === 0 ? "no_attempts_left" : "attempts_left",
                   { error: result.data.error, n: n });
      }
      failOn({ code: text });
      code.select();
    } catch (e) {
      fail(msg("network"));
    } finally {
      verifying = false;
      verifyButton.disabled = false;
    }
  }

  async function changeEmail() {
    changeButton.disabled = true;
    await guarded(async function () {
      const result = await usherPostJson("/onboarding/checkout/change-email/", {});
      if (!result.ok) { fail(result.data.error); return; }
      unlock();
      say(msg("unlocked"));
      fields.email.focus();
      fields.email.select();
    });
    changeButton.disabled = false;
  }

  async function pay() {
    if (payButton.disabled) return;
    clearErrors();
    if (failOn(required(order))) return;
    if (verifiedEmail === null || fields.email.value.trim().toLowerCase() !== verifiedEmail) {
      failOn(codeRequested ? { code: msg("verify_first") } : { email: msg("verify_first") });
      return;
    }
    payButton.disabled = true;
    try {
      keep(order);
      say(msg("preparing"));
      const result = await usherPostJson("/onboarding/checkout/session/", {
        email: fields.email.value, last_name: fields.last_name.value, username: fields.username.value });
      if (!result.ok) {
        if (!(result.data.errors && failOn(result.data.errors))) fail(result.data.error);
        return;
      }
      if (!usherFollowCheckout(result.data, form.dataset.publishableKey, status,
                               form.closest(".checkout-layout"))) fail();
    } catch (e) {
      fail(msg("network"));
    } finally {
      payButton.disabled = false;
    }
  }

  if (verifiedEmail !== null && fields.email.value.trim().toLowerCase() !== verifiedEmail) unlock();
  sendButton.addEventListener("click", sendCode);
  verifyButton.addEventListener("click", verify);
  changeButton.addEventListener("click", changeEmail);
  usherCodeInput(code, verify);
  // Enter: in the email field it sends the code, in the code field it verifies it; in the
  // other fields it pays once the address is verified, and otherwise sends the code (or
  // verifies the one asked for). Only the button itself submits the form to pay.
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.isComposing || event.target.tagName !== "INPUT") return;
    event.preventDefault();
    const target = event.target;
    if (target === code) verify();
    else if (target === fields.email && verifiedEmail === null) sendCode();
    else if (verifiedEmail !== null) pay();
    else if (codeRequested) { code.focus(); if (code.value) verify(); }
    else sendCode();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    pay();
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
  let codeRequested = false;
  let verified = false; // a code is single use: never send the same one twice

  function say(text) { progress.textContent = text || ""; status.textContent = ""; }
  function fieldError(name, text) { usherFieldError(name === "code" ? code : identifier, text); }
  function fail(name, text) {
    progress.textContent = "";
    status.textContent = text || "Something went wrong. Please try again.";
    if (name) { fieldError(name, text); (name === "code" ? code : identifier).focus(); }
  }
  function countdown(seconds) {
    usherCountdown(sendButton, seconds, function (n) { return "Resend in " + n + " s"; }, "Resend code");
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
    if (!/^[0-9]{6}$/.test(code.value.replace(/\D/g, ""))) { fail("code", "Enter the 6-digit code from the email."); return; }
    verifyButton.disabled = true;
    say("Checking…");
    try {
      const result = await usherPostJson("/recovery/verify-code/", { identifier: identifier.value, code: code.value.replace(/\D/g, "") });
      if (!result.ok) { fail("code", result.data.error); return; }
      verified = true;
      say("");
      // Done with codes: the form stays for reference, its controls step aside.
      usherCountdownStop(sendButton, null);
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
  usherCodeInput(code, verify);

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
