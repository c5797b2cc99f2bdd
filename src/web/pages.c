/*
 * pages.c — the base page context (see pages.h).
 */
#include "web/pages.h"

#include "core/config.h"
#include "domain/session_store.h"
#include "web/app.h"

json_t *web_site_context(const struct usher_config *cfg)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", cfg->site_name, "logo_url",
                     cfg->logo_url, "brand_color", cfg->brand_color, "support_email",
                     cfg->support_email, "terms_url", cfg->terms_url ? cfg->terms_url : "",
                     "privacy_url", cfg->privacy_url ? cfg->privacy_url : "");
}

json_t *web_page_context(struct web_request *r, const char *title)
{
    json_t *site = r->app->site ? json_incref(r->app->site) : web_site_context(r->app->cfg);
    /* Built key by key: json_pack's format parsing cost more than the page context's data. */
    json_t *ctx = json_object();
    json_object_set_new(ctx, "site", site);
    json_object_set_new(ctx, "title", json_string(title ? title : ""));
    json_object_set_new(ctx, "request_id", json_string(r->request_id));
    if (r->session)
        json_object_set_new(ctx, "csrf_token", json_string(r->session->csrf_token));
    return ctx;
}
