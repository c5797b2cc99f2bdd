/*
 * dispatch.h — the single Ulfius callback through which every request passes.
 *
 * Usher does its own routing instead of registering one Ulfius endpoint per route: Ulfius's
 * callback chain cannot run code after the handler (access log, metrics, session save,
 * security headers on every reply) and its default endpoint cannot tell 404 from 405. The
 * pipeline, in order: request id → route lookup (404/405) → body limit (413) → session →
 * CSRF → handler → session save and cookie → security headers → access log and metrics.
 */
#ifndef USHER_WEB_DISPATCH_H
#define USHER_WEB_DISPATCH_H

struct _u_request;
struct _u_response;

/* Ulfius callback; user_data is the struct web_app. */
int web_dispatch(const struct _u_request *req, struct _u_response *resp, void *user_data);
/* Requests currently being handled (for graceful shutdown and the in-flight gauge). */
int web_in_flight(void);

#endif
