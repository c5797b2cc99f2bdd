/*
 * retry.c — exponential back-off with a cap and jitter (see retry.h).
 */
#include "tasks/retry.h"

#include "core/crypto.h"

#include <math.h>

int64_t task_retry_nominal(int retry, int base_seconds)
{
    if (retry < 1)
        retry = 1;
    if (base_seconds < 1)
        base_seconds = 1;
    int64_t d = base_seconds;
    for (int i = 1; i < retry && d < TASK_RETRY_CAP_SECONDS; i++)
        d *= 2;
    return d < TASK_RETRY_CAP_SECONDS ? d : TASK_RETRY_CAP_SECONDS;
}

int64_t task_retry_delay(int retry, int base_seconds, double unit)
{
    if (!(unit >= 0.0) || unit >= 1.0)
        unit = 0.5;
    double nominal = (double)task_retry_nominal(retry, base_seconds);
    double factor = 1.0 + (TASK_RETRY_JITTER_PERCENT / 100.0) * (2.0 * unit - 1.0);
    int64_t d = (int64_t)llround(nominal * factor);
    return d < 1 ? 1 : d;
}

double task_retry_unit(void)
{
    return (double)crypto_random_below(1000000) / 1000000.0;
}
