/*
 * stream.c — replies produced while they are sent (see stream.h).
 */
#include "web/stream.h"

#include "core/log.h"
#include "core/mem.h"
#include "web/response.h"

#include <stdlib.h>
#include <string.h>
#include <ulfius.h>

#define STREAM_BLOCK 16384

struct stream {
    struct buf piece;
    size_t sent; /* bytes of piece already handed out */
    bool done;
    web_stream_next_fn next;
    web_stream_free_fn free_ctx;
    void *ctx;
};

static ssize_t stream_read(void *data, uint64_t offset, char *out, size_t max)
{
    (void)offset;
    struct stream *s = data;
    while (s->sent == s->piece.len) {
        if (s->done)
            return U_STREAM_END;
        buf_reset(&s->piece);
        s->sent = 0;
        if (s->next(s->ctx, &s->piece, &s->done) != 0) {
            log_error("msg=\"streamed reply cut short\"");
            return U_STREAM_ERROR;
        }
    }
    size_t n = s->piece.len - s->sent;
    if (n > max)
        n = max;
    memcpy(out, s->piece.data + s->sent, n);
    s->sent += n;
    return (ssize_t)n;
}

static void stream_free(void *data)
{
    struct stream *s = data;
    if (s->free_ctx)
        s->free_ctx(s->ctx);
    buf_cleanup(&s->piece);
    free(s);
}

void web_reply_stream(struct web_request *r, int status, const char *content_type,
                      web_stream_next_fn next, web_stream_free_fn free_ctx, void *ctx)
{
    struct stream *s = xcalloc(1, sizeof *s);
    buf_init(&s->piece);
    s->next = next;
    s->free_ctx = free_ctx;
    s->ctx = ctx;
    if (content_type)
        web_set_header(r, "Content-Type", content_type);
    if (ulfius_set_stream_response(r->u_resp, (unsigned)status, stream_read, stream_free,
                                   U_STREAM_SIZE_UNKNOWN, STREAM_BLOCK, s) != U_OK) {
        stream_free(s);
        web_reply_error(r, 500, "The export could not be started.");
        return;
    }
    r->status = status;
    r->replied = true;
}
