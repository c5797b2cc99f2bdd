/*
 * log.h — one-line structured logging to stderr.
 *
 * Lines look like `2026-11-26T07:00:00Z level=info msg="..." key=value`. Callers pass
 * key=value text themselves; never a token, key, code or request body.
 */
#ifndef USHER_CORE_LOG_H
#define USHER_CORE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif

#ifndef USHER_CORE_LOG_QUOTE
#define USHER_CORE_LOG_QUOTE
#include <stddef.h>
/* Copies untrusted text into out (size bytes) for a log line: quotes, backslashes and control
 * characters are escaped and long text is cut, so a request can never forge a log line. */
void log_quote(char *out, size_t size, const char *in);
#endif
