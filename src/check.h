/*
 * check.h — `usher check`: the configuration, then every configured external system,
 * reached without changing anything (SPEC §10).
 */
#ifndef USHER_CHECK_H
#define USHER_CHECK_H

struct usher_config;

/* Prints one line per finding; returns 0 when everything configured answered. */
int usher_check(const struct usher_config *cfg);

#endif
