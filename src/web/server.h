/*
 * server.h — `usher serve`: the HTTP server's life from start to graceful stop.
 */
#ifndef USHER_WEB_SERVER_H
#define USHER_WEB_SERVER_H

struct usher_config;

/*
 * Opens the database pool, loads templates and static files, listens on BIND with a
 * WEB_THREADS thread pool, and serves until SIGTERM or SIGINT. On a signal it stops
 * accepting connections, lets requests in flight finish (up to SHUTDOWN_GRACE_SECONDS),
 * then exits. Returns 0 after a clean stop, an usher_err otherwise.
 */
int web_serve(const struct usher_config *cfg);

#endif
