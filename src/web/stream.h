/*
 * stream.h — a reply whose body is produced piece by piece while it is sent (the admin
 * console's CSV export), so a long body never sits in memory whole.
 *
 * The handler returns at once; libmicrohttpd then pulls the body from the server's thread
 * as the client reads it, asking `next` for one more piece whenever the previous one is
 * sent. Whatever next needs (a database pool, a cursor) must live in ctx, not in the request:
 * the request is gone by then. Headers are final when the handler returns, so a failure
 * halfway can only cut the body short (the client sees an incomplete transfer).
 */
#ifndef USHER_WEB_STREAM_H
#define USHER_WEB_STREAM_H

#include "core/buf.h"
#include "web/request.h"

#include <stdbool.h>

/* Appends the next piece to out (which is empty); sets *done after the last one. A non-zero
 * return ends the reply with an error. */
typedef int (*web_stream_next_fn)(void *ctx, struct buf *out, bool *done);
typedef void (*web_stream_free_fn)(void *ctx);

/* Replies status with content_type; ctx belongs to the stream from now on and is released
 * with free_ctx after the last piece, or when the client goes away. */
void web_reply_stream(struct web_request *r, int status, const char *content_type,
                      web_stream_next_fn next, web_stream_free_fn free_ctx, void *ctx);

#endif
