/*
 * brand.c — GET /brand.css: the configured brand colour as a CSS custom property.
 *
 * The page's Content-Security-Policy allows no inline styles, so the one configurable style
 * comes from here. BRAND_COLOR is validated as a hex colour at start, so it is safe to emit.
 */
#include "core/config.h"
#include "core/mem.h"
#include "web/app.h"
#include "web/handlers.h"
#include "web/response.h"

#include <stdlib.h>
#include <string.h>

int web_brand_css(struct web_request *r)
{
    char *css = xasprintf(":root{--brand:%s}\n", r->app->cfg->brand_color);
    web_set_header(r, "Cache-Control", "public, max-age=300");
    web_reply_bytes(r, 200, "text/css; charset=utf-8", css, strlen(css));
    free(css);
    return 0;
}
