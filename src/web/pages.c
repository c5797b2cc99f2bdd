/*
 * pages.c — the base page context (see pages.h).
 */
#include "web/pages.h"

#include "core/config.h"
#include "domain/session_store.h"
#include "web/app.h"

json_t *web_page_context(struct web_request *r, const char *title)
{
    const struct usher_config *cfg = r->app->cfg;
    json_t *site = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", cfg->site_name, "logo_url",
                             cfg->logo_url, "brand_color", cfg->brand_color, "support_email",
                             cfg->support_email, "terms_url", cfg->terms_url ? cfg->terms_url : "",
                             "privacy_url", cfg->privacy_url ? cfg->privacy_url : "");
    json_t *ctx = json_pack("{s:o, s:s, s:s}", "site", site, "title", title ? title : "",
                            "request_id", r->request_id);
    if (r->session)
        json_object_set_new(ctx, "csrf_token", json_string(r->session->csrf_token));
    return ctx;
}
