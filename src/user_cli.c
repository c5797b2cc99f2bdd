/*
 * user_cli.c — `usher user VERB USERNAME` (see user_cli.h). The table below lists the
 * verbs; each gets the resolved user and returns the exit status.
 */
#include "user_cli.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "db/db.h"
#include "domain/identity_keycloak.h"
#include "domain/provisioning.h"
#include "domain/stripe_processing.h"
#include "domain/users.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define CLI_POOL_SIZE 2
#define USERNAME_ARG_MAX (USERNAME_MAX_LEN * 4)

/* The user a verb acts on, as found in the database. */
struct user_target {
    int64_t id;
    char username[USERNAME_ARG_MAX + 1]; /* as stored */
    char shown[USERNAME_ARG_MAX * 4 + 1]; /* log_quote'd, for messages */
    bool keycloak_linked; /* users.keycloak_id is set */
};

struct user_verb {
    const char *name;
    const char *help;
    int (*run)(const struct usher_config *cfg, struct db_pool *pool,
               const struct user_target *user);
};

static int verb_sync(const struct usher_config *cfg, struct db_pool *pool,
                     const struct user_target *user);
static int verb_refresh(const struct usher_config *cfg, struct db_pool *pool,
                        const struct user_target *user);

static const struct user_verb verbs[] = {
    {"sync", "run the provisioning sync (seats, groups, Keycloak attributes) now", verb_sync},
    {"refresh", "re-read the subscription's status and items from Stripe", verb_refresh},
};

static int usage(void)
{
    fputs("usage:\n", stderr);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(stderr, "  usher user %s USERNAME    %s\n", verbs[i].name, verbs[i].help);
    return EXIT_USAGE;
}

/* ---- sync ------------------------------------------------------------------------------- */

static int verb_sync(const struct usher_config *cfg, struct db_pool *pool,
                     const struct user_target *user)
{
    struct identity_ops ops;
    int rc = identity_keycloak_ops(cfg, &ops);
    if (rc != 0) {
        fprintf(stderr,
                "usher: user sync needs the Keycloak Admin API (KEYCLOAK_SERVER_URL, "
                "KEYCLOAK_REALM, KEYCLOAK_ADMIN_CLIENT_ID, KEYCLOAK_ADMIN_CLIENT_SECRET)\n");
        return EXIT_USAGE;
    }
    struct provisioning_report report = {0};
    rc = provisioning_sync_user(pool, user->id, clock_now(), &ops, &report);
    if (rc != 0) {
        fprintf(stderr, "usher: user sync %s failed: %s%s\n", user->shown,
                *report.problem ? report.problem : usher_strerror(rc),
                rc == USHER_EUPSTREAM ? " (is Keycloak reachable?)" : "");
        return EXIT_FAIL;
    }
    printf("synced %s (user %lld): seats taken %d, waiting %d, released %d; groups granted %d, "
           "revoked %d; attributes dropped %d%s\n",
           user->shown, (long long)user->id, report.seats_taken, report.seats_waiting,
           report.seats_released, report.groups_added, report.groups_removed,
           report.attributes_dropped,
           user->keycloak_linked ? "" : " (no Keycloak account linked: Usher's side only)");
    return 0;
}

/* ---- refresh ---------------------------------------------------------------------------- */

static int verb_refresh(const struct usher_config *cfg, struct db_pool *pool,
                        const struct user_target *user)
{
    if (!*cfg->stripe_secret_key) {
        fprintf(stderr, "usher: user refresh needs STRIPE_SECRET_KEY\n");
        return EXIT_USAGE;
    }
    struct stripe_refresh_result res;
    int rc = stripe_refresh_user(pool, cfg, user->id, clock_now(), &res);
    if (rc != 0) {
        fprintf(stderr, "usher: user refresh %s failed: %s\n", user->shown, res.note);
        return EXIT_FAIL;
    }
    if (res.outcome == STRIPE_REFRESH_NO_SUBSCRIPTION) {
        printf("%s (user %lld) has no Stripe subscription; nothing to refresh\n", user->shown,
               (long long)user->id);
        return 0;
    }
    printf("refreshed %s (user %lld) from Stripe: status %s, %d item%s%s; sync queued\n",
           user->shown, (long long)user->id, res.status, res.items, res.items == 1 ? "" : "s",
           res.outcome == STRIPE_REFRESH_CANCELED ? " (the cancellation was applied)" : "");
    return 0;
}

/* ---- dispatch --------------------------------------------------------------------------- */

/* Finds the user by username (stored lowercase, so the argument is lowercased). */
static int find_user(struct db_pool *pool, const char *arg, struct user_target *out)
{
    size_t n = strlen(arg);
    if (n == 0 || n > USERNAME_ARG_MAX)
        return USHER_ENOTFOUND;
    for (size_t i = 0; i < n; i++)
        out->username[i] = (char)tolower((unsigned char)arg[i]);
    out->username[n] = '\0';
    struct db_conn *conn = NULL;
    int rc = db_acquire(pool, DB_WAIT_MS, &conn);
    if (rc != 0)
        return rc;
    const struct db_param p[] = {DB_TEXT(out->username)};
    struct db_result *res = NULL;
    rc = db_query(conn, "SELECT id, keycloak_id FROM users WHERE username = $1", p, DB_NPARAMS(p),
                  &res);
    if (rc == 0 && db_result_rows(res) == 0)
        rc = USHER_ENOTFOUND;
    if (rc == 0) {
        out->id = db_result_int(res, 0, 0);
        out->keycloak_linked = !db_result_is_null(res, 0, 1) && *db_result_text(res, 0, 1);
    }
    db_result_free(res);
    db_release(conn);
    return rc;
}

int user_cli_main(const struct usher_config *cfg, int argc, char **argv)
{
    if (argc != 4)
        return usage();
    const struct user_verb *verb = NULL;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[2], verbs[i].name))
            verb = &verbs[i];
    if (!verb)
        return usage();
    struct user_target user = {0};
    log_quote(user.shown, sizeof user.shown, argv[3]);
    struct db_pool *pool = NULL;
    int rc = db_pool_new(cfg->database_url, CLI_POOL_SIZE, &pool);
    if (rc == 0)
        rc = find_user(pool, argv[3], &user);
    if (rc == USHER_ENOTFOUND) {
        fprintf(stderr, "usher: no user named '%s'\n", user.shown);
        db_pool_free(pool);
        return EXIT_FAIL;
    }
    if (rc != 0) {
        fprintf(stderr, "usher: cannot reach the database (%s)\n", usher_strerror(rc));
        db_pool_free(pool);
        return EXIT_FAIL;
    }
    log_quote(user.shown, sizeof user.shown, user.username);
    int status = verb->run(cfg, pool, &user);
    db_pool_free(pool);
    return status;
}
