/*
 * user_cli.h — `usher user …`: operator commands about one user (SPEC §11).
 *
 *   usher user sync USERNAME     runs the provisioning sync for that user now (seats, groups,
 *                                Keycloak attributes; domain/provisioning.h) and prints a
 *                                one-line report
 *   usher user refresh USERNAME  re-reads the subscription from Stripe
 *   usher user expire USERNAME [--dry-run]
 *                                closes the account past its final expiry now
 *                                (domain/expiry.h); --dry-run prints what it would take away
 *                                (seats, groups, the Keycloak user, sessions, the status)
 *                                and changes nothing
 *
 * Every verb takes a username; the dispatcher resolves it to the local user first, so a verb
 * is one entry in the table in user_cli.c. Exit statuses: 0 success, 1 failure (unknown
 * user, Keycloak or the database failed), 2 usage or configuration, 3 refused (expire: the
 * account is not canceled or past_due, or its final expiry has not passed).
 */
#ifndef USHER_USER_CLI_H
#define USHER_USER_CLI_H

#include <stdio.h>

struct usher_config;

/* The usage text of `usher user` (stdout for --help, stderr on a usage error). */
void user_cli_usage(FILE *out);

/* argv[0] is the program, argv[1] "user". Returns the exit status. */
int user_cli_main(const struct usher_config *cfg, int argc, char **argv);

#endif
