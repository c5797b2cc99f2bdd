/*
 * signals.h — how `usher serve` and `usher worker` receive their stop signals.
 *
 * SIGTERM and SIGINT are blocked in every thread (threads started afterwards inherit the
 * mask) and taken synchronously with sigwait in the main thread, so no handler ever runs in
 * the middle of a request or a task. SIGPIPE is ignored: a peer closing a socket is an error
 * return, not a death.
 */
#ifndef USHER_CORE_SIGNALS_H
#define USHER_CORE_SIGNALS_H

#include <signal.h>

/* Blocks the stop signals in the calling thread and fills set with them. Call before
 * starting any thread. */
void signals_block_stop(sigset_t *set);

#endif
