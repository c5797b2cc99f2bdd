/*
 * home.c — GET / (SPEC §2): the dashboard for a logged-in user, the login otherwise.
 */
#include "domain/session_store.h"
#include "web/handlers.h"
#include "web/response.h"

int web_home(struct web_request *r)
{
    if (r->session && r->session->user_id)
        web_redirect(r, "/dashboard/");
    else
        web_redirect(r, "/oidc/authenticate/?next=/dashboard/");
    return 0;
}
