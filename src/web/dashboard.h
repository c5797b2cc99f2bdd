/*
 * dashboard.h — the context shared by the logged-in pages that show the dashboard menu
 * (the dashboard, the account page, the change-password confirmation).
 */
#ifndef USHER_WEB_DASHBOARD_H
#define USHER_WEB_DASHBOARD_H

#include "web/request.h"

#include <jansson.h>

/* web_page_context plus user{…}, status.<word>, menu.<menu_item> (the current menu entry:
 * "services", "account" or "password"), has_customer, no_subscription and the past-due or
 * canceled banner. A new object; the caller owns it. r must have a user. */
json_t *web_dashboard_context(struct web_request *r, const char *title, const char *menu_item);

#endif
