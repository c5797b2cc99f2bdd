/*
 * users.h — Usher's people (SPEC §1 users, §6 login).
 *
 * A login finds the local user by username (stored lowercase), or — when Keycloak renamed
 * them — by the Keycloak id, creates one otherwise, and updates email, names, the admin flag
 * and the Keycloak link from the verified claims.
 */
#ifndef USHER_DOMAIN_USERS_H
#define USHER_DOMAIN_USERS_H

#include <stdbool.h>
#include <stdint.h>

struct db_pool;

#define USERNAME_MAX_LEN 64

struct user_login {
    const char *sub; /* Keycloak id */
    const char *username; /* preferred_username */
    const char *email;
    const char *first_name;
    const char *last_name;
    bool is_admin;
};

struct user {
    int64_t id;
    char username[USERNAME_MAX_LEN * 4 + 1];
    char *email;
    char *first_name;
    char *last_name;
    bool is_admin;
    char *keycloak_id;
    char *stripe_customer_id;
    char *subscription_status;
    int64_t access_expires_at; /* 0 when unset */
};

/* USHER_EINVAL when sub or username is missing or the username is too long. */
int users_upsert_from_login(struct db_pool *pool, const struct user_login *login, int64_t now,
                            int64_t *user_id, bool *created);
/* Loads a user by id into *out (strings owned by *out; users_cleanup frees them). */
int users_get(struct db_pool *pool, int64_t id, struct user *out);
void users_cleanup(struct user *u);
/* *exists tells whether a user with this id is on file; nonzero only when the database fails
 * (then *exists is false). */
int users_exists(struct db_pool *pool, int64_t id, bool *exists);

#endif
