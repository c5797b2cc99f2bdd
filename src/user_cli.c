/*
 * user_cli.c — `usher user VERB USERNAME` (see user_cli.h). The table below lists the
 * verbs; each gets the resolved user and returns the exit status.
 */
#include "user_cli.h"

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/human_format.h"
#include "core/mem.h"
#include "db/db.h"
#include "domain/expiry.h"
#include "domain/identity_keycloak.h"
#include "domain/provisioning.h"
#include "domain/stripe_processing.h"
#include "domain/users.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_REFUSED 3 /* the verb does not apply to this user now (expire: not due) */
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
    bool dry_run_ok; /* takes --dry-run */
    int (*run)(const struct usher_config *cfg, struct db_pool *pool, const struct user_target *user,
               bool dry_run);
};

static int verb_sync(const struct usher_config *cfg, struct db_pool *pool,
                     const struct user_target *user, bool dry_run);
static int verb_refresh(const struct usher_config *cfg, struct db_pool *pool,
                        const struct user_target *user, bool dry_run);
static int verb_expire(const struct usher_config *cfg, struct db_pool *pool,
                       const struct user_target *user, bool dry_run);

static const struct user_verb verbs[] = {
    {"sync", "run the provisioning sync (seats, groups, Keycloak attributes) now", false,
     verb_sync},
    {"refresh", "re-read the subscription's status and items from Stripe", false, verb_refresh},
    {"expire", "close the account past its final expiry now (--dry-run: only show the plan)", true,
     verb_expire},
};

void user_cli_usage(FILE *out)
{
    fputs("usage:\n", out);
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(out, "  usher user %s USERNAME%s    %s\n", verbs[i].name,
                verbs[i].dry_run_ok ? " [--dry-run]" : "", verbs[i].help);
}

static int usage(void)
{
    user_cli_usage(stderr);
    return EXIT_USAGE;
}

/* ---- sync ------------------------------------------------------------------------------- */

static int verb_sync(const struct usher_config *cfg, struct db_pool *pool,
                     const struct user_target *user, bool dry_run)
{
    (void)dry_run;
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
                        const struct user_target *user, bool dry_run)
{
    (void)dry_run;
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

/* ---- expire ----------------------------------------------------------------------------- */

static void print_list(const char *label, const json_t *items, bool seats)
{
    printf("  %-22s", label);
    if (json_array_size(items) == 0)
        fputs("none", stdout);
    size_t i;
    const json_t *v;
    json_array_foreach (items, i, v) {
        if (!seats) {
            printf("%s%s", i ? ", " : "", json_string_value(v));
            continue;
        }
        const char *instance = json_string_value(json_object_get(v, "instance"));
        printf("%s%s on %s", i ? ", " : "", json_string_value(json_object_get(v, "product")),
               instance ? instance : "(waiting for capacity)");
    }
    putchar('\n');
}

/* What Keycloak says about the linked user, for the plan; never fails the plan. */
static const char *keycloak_presence(const struct usher_config *cfg, const char *id)
{
    struct expiry_identity idp;
    bool exists = false;
    if (identity_keycloak_expiry(cfg, &idp) != 0)
        return "not checked: the Keycloak Admin API is not configured";
    if (idp.user_exists(idp.ctx, id, &exists) != 0)
        return "not checked: Keycloak did not answer";
    return exists ? "exists" : "already gone";
}

static void print_plan(const struct usher_config *cfg, const struct user_target *user,
                       const struct expiry_plan *plan)
{
    char date[FORMAT_DATE_MAX] = "";
    if (plan->access_expires_at)
        format_long_date(plan->access_expires_at, date, sizeof date);
    printf("%s (user %lld): status %s, final expiry %s\n", user->shown, (long long)user->id,
           *plan->status ? plan->status : "(none)", *date ? date : "not set");
    print_list("seats to free:", plan->seats, true);
    print_list("groups to remove:", plan->groups, false);
    if (plan->keycloak_id)
        printf("  %-22s%s (%s)\n", "Keycloak user to delete:", plan->keycloak_id,
               keycloak_presence(cfg, plan->keycloak_id));
    else
        printf("  %-22snone linked\n", "Keycloak user to delete:");
    printf("  %-22s%lld\n", "sessions to end:", (long long)plan->sessions);
    printf("  %-22s%s -> expired\n", "status:", *plan->status ? plan->status : "(none)");
}

static int refuse(const struct user_target *user, const struct expiry_plan *plan)
{
    char date[FORMAT_DATE_MAX] = "";
    if (plan->access_expires_at)
        format_long_date(plan->access_expires_at, date, sizeof date);
    if (strcmp(plan->status, "canceled") && strcmp(plan->status, "past_due"))
        fprintf(stderr,
                "usher: refusing to expire %s: status is '%s'; only a canceled or past_due "
                "account is closed at its final expiry\n",
                user->shown, plan->status);
    else if (!*date)
        fprintf(stderr, "usher: refusing to expire %s: no final expiry date is set\n", user->shown);
    else
        fprintf(stderr, "usher: refusing to expire %s: its final expiry (%s) has not passed\n",
                user->shown, date);
    return EXIT_REFUSED;
}

static int verb_expire(const struct usher_config *cfg, struct db_pool *pool,
                       const struct user_target *user, bool dry_run)
{
    int64_t now = clock_now();
    struct expiry_plan plan;
    int rc = expiry_plan_read(pool, user->id, now, &plan);
    if (rc != 0) {
        fprintf(stderr, "usher: user expire %s failed: %s\n", user->shown, usher_strerror(rc));
        return EXIT_FAIL;
    }
    int status = 0;
    if (plan.state == EXPIRY_DONE) {
        char date[FORMAT_DATE_MAX] = "";
        format_long_date(plan.access_expires_at, date, sizeof date);
        printf("%s (user %lld) was already closed (final expiry %s); nothing to do\n", user->shown,
               (long long)user->id, *date ? date : "not set");
    } else if (plan.state == EXPIRY_NOT_DUE) {
        if (dry_run)
            print_plan(cfg, user, &plan);
        status = refuse(user, &plan);
    } else if (dry_run) {
        print_plan(cfg, user, &plan);
        puts("dry run: nothing was changed");
    } else {
        struct expiry_identity idp;
        bool have_idp = identity_keycloak_expiry(cfg, &idp) == 0;
        struct expiry_report report;
        rc = expiry_close_user(pool, user->id, now, "cli", have_idp ? &idp : NULL, &report);
        if (rc != 0) {
            fprintf(stderr, "usher: user expire %s failed: %s\n", user->shown, report.problem);
            status = rc == USHER_ECONFIG ? EXIT_USAGE : EXIT_FAIL;
        } else if (report.state == EXPIRY_NOT_DUE) {
            status = refuse(user, &plan); /* recovered in the meantime */
        } else {
            printf("expired %s (user %lld): seats freed %d, groups removed %d, Keycloak user "
                   "%s, sessions ended %lld, status expired\n",
                   user->shown, (long long)user->id, report.seats_released, report.groups_removed,
                   report.keycloak == EXPIRY_KC_DELETED        ? "deleted"
                   : report.keycloak == EXPIRY_KC_ALREADY_GONE ? "already gone"
                                                               : "none linked",
                   (long long)report.sessions_ended);
        }
    }
    expiry_plan_cleanup(&plan);
    return status;
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
    if (argc < 4 || argc > 5)
        return usage();
    const struct user_verb *verb = NULL;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (!strcmp(argv[2], verbs[i].name))
            verb = &verbs[i];
    if (!verb)
        return usage();
    /* USERNAME and, for the verbs that take it, --dry-run, in either order. */
    const char *username = NULL;
    bool dry_run = false;
    for (int i = 3; i < argc; i++) {
        if (verb->dry_run_ok && !dry_run && !strcmp(argv[i], "--dry-run"))
            dry_run = true;
        else if (!username)
            username = argv[i];
        else
            return usage();
    }
    if (!username)
        return usage();
    struct user_target user = {0};
    log_quote(user.shown, sizeof user.shown, username);
    struct db_pool *pool = NULL;
    int rc = db_pool_new(cfg->database_url, CLI_POOL_SIZE, &pool);
    if (rc == 0)
        rc = find_user(pool, username, &user);
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
    int status = verb->run(cfg, pool, &user, dry_run);
    db_pool_free(pool);
    return status;
}
