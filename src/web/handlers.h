/*
 * handlers.h — every route handler, grouped by the web/ file that defines it.
 */
#ifndef USHER_WEB_HANDLERS_H
#define USHER_WEB_HANDLERS_H

#include "web/request.h"

/* health.c, metrics_page.c */
int web_health(struct web_request *r);
int web_metrics(struct web_request *r);
/* static_files.c */
int web_static(struct web_request *r);
/* account_actions.c */
int web_reset_password(struct web_request *r);
int web_billing_portal(struct web_request *r);
/* brand.c */
int web_brand_css(struct web_request *r);
/* dashboard.c */
int web_dashboard(struct web_request *r);
int web_account(struct web_request *r);
/* home.c */
int web_home(struct web_request *r);
/* onboarding_start.c */
int web_onboarding_start(struct web_request *r);
/* onboarding_plan.c, onboarding_addons.c, onboarding_codes.c */
int web_onboarding_plan(struct web_request *r);
int web_onboarding_addons(struct web_request *r);
int web_onboarding_send_code(struct web_request *r);
int web_onboarding_verify_code(struct web_request *r);
/* onboarding_checkout.c, onboarding_checkout_session.c, onboarding_success.c */
int web_onboarding_checkout(struct web_request *r);
int web_onboarding_cancel(struct web_request *r);
int web_onboarding_checkout_validate(struct web_request *r);
int web_onboarding_checkout_session(struct web_request *r);
/* onboarding_checkout_fields.c */
int web_onboarding_checkout_fields(struct web_request *r);
int web_onboarding_change_email(struct web_request *r);
int web_onboarding_success(struct web_request *r);
int web_onboarding_success_status(struct web_request *r);
int web_onboarding_resend_password(struct web_request *r);
/* webhook.c */
int web_stripe_webhook(struct web_request *r);
/* waitlist.c */
int web_waitlist_page(struct web_request *r);
int web_waitlist_submit(struct web_request *r);
/* oidc_routes.c */
int web_oidc_authenticate(struct web_request *r);
int web_oidc_callback(struct web_request *r);
int web_logout(struct web_request *r);
/* recovery_codes.c, recovery_pages.c */
int web_recovery_page(struct web_request *r);
int web_recovery_send_code(struct web_request *r);
int web_recovery_verify_code(struct web_request *r);
int web_recovery_checkout_session(struct web_request *r);
int web_recovery_success(struct web_request *r);

/* ---- admin console (SPEC §9): admin-core ---- */
/* admin_index.c */
int web_admin_index(struct web_request *r);
/* admin_products.c */
int web_admin_products(struct web_request *r);
int web_admin_products_inline(struct web_request *r);
int web_admin_product_edit(struct web_request *r);
/* admin_lists.c */
int web_admin_prices(struct web_request *r);
int web_admin_groups(struct web_request *r);
/* admin_instances.c */
int web_admin_instances(struct web_request *r);
int web_admin_instance_edit(struct web_request *r);
/* admin_audit.c */
int web_admin_audit(struct web_request *r);
/* ---- end admin-core ---- */

/* ---- admin console: admin-users ---- */
/* admin_users.c: the list; /admin/users/<id>/ and /admin/users/bulk/<job>/ */
int web_admin_users(struct web_request *r);
int web_admin_user_item(struct web_request *r);
/* admin_users_bulk.c: POST /admin/users/bulk/ (confirm, then start) */
int web_admin_users_bulk(struct web_request *r);
/* ---- end admin-users ---- */
/* ---- admin console (SPEC §9): admin-ops ---- */
/* admin_stripe_events.c */
int web_admin_stripe_events(struct web_request *r);
int web_admin_stripe_event(struct web_request *r);
/* admin_tasks.c */
int web_admin_tasks(struct web_request *r);
int web_admin_task(struct web_request *r);
int web_admin_tasks_retry(struct web_request *r);
/* admin_waitlist.c */
int web_admin_waitlist(struct web_request *r);
int web_admin_waitlist_csv(struct web_request *r);
/* admin_assignments.c */
int web_admin_assignments(struct web_request *r);
int web_admin_assignment_allocate(struct web_request *r);
/* ---- end admin-ops ---- */

#endif
