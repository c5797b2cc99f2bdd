/*
 * validate.h — the input rules shared by onboarding, recovery and the waitlist (SPEC §3).
 */
#ifndef USHER_DOMAIN_VALIDATE_H
#define USHER_DOMAIN_VALIDATE_H

#define EMAIL_MAX_LEN 254
#define FIRST_NAME_MAX_LEN 150
#define USERNAME_MIN_LEN 3
#define USERNAME_MAX_LEN 64

/* Emails: trimmed, lowercased, one '@', a dot in the domain, at most 254 characters.
 * On success *normalized is a heap string; on failure returns USHER_EINVAL and *error is a
 * static message for the user. */
int validate_email(const char *in, char **normalized, const char **error);
/* A person's name: trimmed, required, at most max characters (UTF-8 code points), no control
 * characters. */
int validate_name(const char *in, int max, char **normalized, const char **error);
/* Usernames: trimmed and lowercased, then 3–64 characters of [a-z0-9._-] starting with a
 * letter or digit. Same contract as validate_email. */
int validate_username(const char *in, char **normalized, const char **error);

#endif
