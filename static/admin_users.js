// The admin console's bulk-action result page (templates/pages/admin/users_bulk.mustache):
// while tasks are pending the summary carries data-refresh, and the page reloads itself
// every 3 seconds until none is. Without JavaScript the Refresh link does the same.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const summary = document.querySelector("[data-refresh]");
  if (!summary) return;
  const url = summary.getAttribute("data-refresh");
  if (url.charAt(0) !== "/") return; // only ever our own page
  window.setTimeout(function () { window.location.replace(url); }, 3000);
});
