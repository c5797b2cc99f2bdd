/*
 * signals.c — stop signals (see signals.h).
 */
#include "core/signals.h"

#include <pthread.h>

void signals_block_stop(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}
