/*
 * routes.c — the route table (see routes.h). Later issues add their routes here.
 */
#include "web/routes.h"

#include "web/handlers.h"

#include <stdio.h>
#include <string.h>

static const struct web_route routes[] = {
    {"/", WEB_GET, web_home, WEB_PUBLIC, 0, "home"},
    {"/health/", WEB_GET, web_health, WEB_OPS, WEB_JSON, "health"},
    {"/metrics", WEB_GET, web_metrics, WEB_OPS, 0, "metrics"},
    {"/static/*", WEB_GET, web_static, WEB_OPS, 0, "static"},
    {"/brand.css", WEB_GET, web_brand_css, WEB_OPS, 0, "brand_css"},
    {"/dashboard/", WEB_GET, web_dashboard, WEB_LOGIN, 0, "dashboard"},
    {"/dashboard/account/", WEB_GET, web_account, WEB_LOGIN, 0, "account"},
    {"/dashboard/reset-password/", WEB_GET | WEB_POST, web_reset_password, WEB_LOGIN, 0,
     "reset_password"},
    {"/dashboard/billing/", WEB_POST, web_billing_portal, WEB_LOGIN, 0, "billing_portal"},
    {"/onboarding/", WEB_GET | WEB_POST, web_onboarding_start, WEB_PUBLIC,
     WEB_SESSION | WEB_SESSION_COPY, "onboarding_start"},
    {"/onboarding/plan/", WEB_GET | WEB_POST, web_onboarding_plan, WEB_PUBLIC, WEB_SESSION_COPY,
     "onboarding_plan"},
    {"/onboarding/addons/", WEB_GET | WEB_POST, web_onboarding_addons, WEB_PUBLIC, WEB_SESSION_COPY,
     "onboarding_addons"},
    {"/onboarding/checkout/send-code/", WEB_POST, web_onboarding_send_code, WEB_PUBLIC, WEB_JSON,
     "onboarding_send_code"},
    {"/onboarding/checkout/verify-code/", WEB_POST, web_onboarding_verify_code, WEB_PUBLIC,
     WEB_JSON, "onboarding_verify_code"},
    {"/onboarding/checkout/", WEB_GET, web_onboarding_checkout, WEB_PUBLIC,
     WEB_SESSION | WEB_SESSION_COPY, "onboarding_checkout"},
    {"/onboarding/checkout/validate/", WEB_POST, web_onboarding_checkout_validate, WEB_PUBLIC,
     WEB_JSON, "onboarding_checkout_validate"},
    {"/onboarding/checkout/session/", WEB_POST, web_onboarding_checkout_session, WEB_PUBLIC,
     WEB_JSON, "onboarding_checkout_session"},
    {"/onboarding/checkout/fields/", WEB_POST, web_onboarding_checkout_fields, WEB_PUBLIC, WEB_JSON,
     "onboarding_checkout_fields"},
    {"/onboarding/checkout/change-email/", WEB_POST, web_onboarding_change_email, WEB_PUBLIC,
     WEB_JSON, "onboarding_change_email"},
    {"/onboarding/success/", WEB_GET, web_onboarding_success, WEB_PUBLIC, WEB_SESSION,
     "onboarding_success"},
    {"/onboarding/success/status/", WEB_GET, web_onboarding_success_status, WEB_PUBLIC, WEB_JSON,
     "onboarding_success_status"},
    {"/onboarding/success/resend-password/", WEB_POST, web_onboarding_resend_password, WEB_PUBLIC,
     WEB_JSON, "onboarding_resend_password"},
    {"/onboarding/cancel/", WEB_GET, web_onboarding_cancel, WEB_PUBLIC, 0, "onboarding_cancel"},
    {"/onboarding/waitlist/", WEB_GET, web_waitlist_page, WEB_PUBLIC, WEB_SESSION, "waitlist"},
    {"/onboarding/webhook/", WEB_POST, web_stripe_webhook, WEB_WEBHOOK, WEB_JSON, "stripe_webhook"},
    {"/onboarding/waitlist/submit/", WEB_POST, web_waitlist_submit, WEB_PUBLIC, WEB_JSON,
     "waitlist_submit"},
    {"/recovery/", WEB_GET, web_recovery_page, WEB_PUBLIC, WEB_SESSION, "recovery"},
    {"/recovery/send-code/", WEB_POST, web_recovery_send_code, WEB_PUBLIC, WEB_JSON,
     "recovery_send_code"},
    {"/recovery/verify-code/", WEB_POST, web_recovery_verify_code, WEB_PUBLIC, WEB_JSON,
     "recovery_verify_code"},
    {"/recovery/checkout-session/", WEB_POST, web_recovery_checkout_session, WEB_PUBLIC, WEB_JSON,
     "recovery_checkout_session"},
    {"/recovery/success/", WEB_GET, web_recovery_success, WEB_PUBLIC, WEB_SESSION,
     "recovery_success"},
    {"/oidc/authenticate/", WEB_GET, web_oidc_authenticate, WEB_PUBLIC, WEB_SESSION,
     "oidc_authenticate"},
    {"/oidc/callback/", WEB_GET, web_oidc_callback, WEB_PUBLIC, 0, "oidc_callback"},
    {"/logout/", WEB_GET | WEB_POST, web_logout, WEB_PUBLIC, 0, "logout"},
    /* ---- admin console (SPEC §9): admin-core ---- */
    {"/admin/", WEB_GET, web_admin_index, WEB_ADMIN, 0, "admin_index"},
    {"/admin/products/", WEB_GET, web_admin_products, WEB_ADMIN, 0, "admin_products"},
    {"/admin/products/inline/", WEB_POST, web_admin_products_inline, WEB_ADMIN, 0,
     "admin_products_inline"},
    {"/admin/products/edit/", WEB_GET | WEB_POST, web_admin_product_edit, WEB_ADMIN, 0,
     "admin_product_edit"},
    {"/admin/prices/", WEB_GET, web_admin_prices, WEB_ADMIN, 0, "admin_prices"},
    {"/admin/instances/", WEB_GET, web_admin_instances, WEB_ADMIN, 0, "admin_instances"},
    {"/admin/instances/edit/", WEB_GET | WEB_POST, web_admin_instance_edit, WEB_ADMIN, 0,
     "admin_instance_edit"},
    {"/admin/groups/", WEB_GET, web_admin_groups, WEB_ADMIN, 0, "admin_groups"},
    {"/admin/audit/", WEB_GET, web_admin_audit, WEB_ADMIN, 0, "admin_audit"},
    /* ---- end admin-core ---- */
    /* ---- admin console: admin-users (exact paths before the prefix) ---- */
    {"/admin/users/", WEB_GET, web_admin_users, WEB_ADMIN, 0, "admin_users"},
    {"/admin/users/bulk/", WEB_POST, web_admin_users_bulk, WEB_ADMIN, 0, "admin_users_bulk"},
    {"/admin/users/*", WEB_GET, web_admin_user_item, WEB_ADMIN, 0, "admin_user"},
    /* ---- end admin-users ---- */
    /* ---- admin console (SPEC §9): admin-ops (exact paths before their prefixes) ---- */
    {"/admin/stripe-events/", WEB_GET, web_admin_stripe_events, WEB_ADMIN, 0,
     "admin_stripe_events"},
    {"/admin/stripe-events/*", WEB_GET | WEB_POST, web_admin_stripe_event, WEB_ADMIN, 0,
     "admin_stripe_event"},
    {"/admin/tasks/", WEB_GET, web_admin_tasks, WEB_ADMIN, 0, "admin_tasks"},
    {"/admin/tasks/retry/", WEB_POST, web_admin_tasks_retry, WEB_ADMIN, 0, "admin_tasks_retry"},
    {"/admin/tasks/*", WEB_GET | WEB_POST, web_admin_task, WEB_ADMIN, 0, "admin_task"},
    {"/admin/waitlist/", WEB_GET, web_admin_waitlist, WEB_ADMIN, 0, "admin_waitlist"},
    {"/admin/waitlist.csv", WEB_GET, web_admin_waitlist_csv, WEB_ADMIN, 0, "admin_waitlist_csv"},
    {"/admin/assignments/", WEB_GET, web_admin_assignments, WEB_ADMIN, 0, "admin_assignments"},
    {"/admin/assignments/*", WEB_POST, web_admin_assignment_allocate, WEB_ADMIN, 0,
     "admin_assignment_allocate"},
    /* ---- end admin-ops ---- */
};

const struct web_route *web_route_find(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *p = routes[i].path;
        size_t len = strlen(p);
        if (p[len - 1] == '*') {
            if (!strncmp(path, p, len - 1))
                return &routes[i];
        } else if (!strcmp(path, p)) {
            return &routes[i];
        }
    }
    return NULL;
}

bool web_route_allows(const struct web_route *route, const char *method)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return (route->methods & WEB_GET) != 0;
    if (!strcmp(method, "POST"))
        return (route->methods & WEB_POST) != 0;
    return false;
}

void web_route_allow_header(const struct web_route *route, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s", (route->methods & WEB_GET) ? "GET, HEAD" : "",
             (route->methods & WEB_GET) && (route->methods & WEB_POST) ? ", " : "",
             (route->methods & WEB_POST) ? "POST" : "");
}

bool web_route_is_json(const struct web_route *route)
{
    return (route->flags & WEB_JSON) != 0;
}
