/*
 * test_task_retry.c — the retry schedule (tasks/retry.h) and the handler registry
 * (tasks/task.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/err.h"
#include "db/task_store.h"
#include "tasks/retry.h"
#include "tasks/task.h"

#include <string.h>

static void test_default_schedule(void **state)
{
    (void)state;
    /* The old system's: 30 s, 60 s, 120 s. */
    assert_int_equal(task_retry_nominal(1, 30), 30);
    assert_int_equal(task_retry_nominal(2, 30), 60);
    assert_int_equal(task_retry_nominal(3, 30), 120);
    assert_int_equal(task_retry_nominal(1, 5), 5);
    assert_int_equal(task_retry_nominal(0, 0), 1);
}

static void test_long_schedule_about_eight_hours(void **state)
{
    (void)state;
    int64_t total = 0, prev = 0;
    for (int r = 1; r < TASK_LONG_MAX_ATTEMPTS; r++) {
        int64_t d = task_retry_nominal(r, 30);
        assert_true(d >= prev);
        assert_true(d <= TASK_RETRY_CAP_SECONDS);
        prev = d;
        total += d;
    }
    assert_int_equal(prev, TASK_RETRY_CAP_SECONDS); /* the last retry waits the cap */
    assert_true(total >= 7 * 3600 && total <= 9 * 3600);
    /* Far past the cap, no overflow. */
    assert_int_equal(task_retry_nominal(1000, 86400), TASK_RETRY_CAP_SECONDS);
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    assert_int_equal(task_retry_delay(1, 30, 0.0), 24);
    assert_int_equal(task_retry_delay(1, 30, 0.5), 30);
    assert_int_equal(task_retry_delay(1, 30, 0.999999), 36);
    assert_int_equal(task_retry_delay(3, 30, 0.0), 96);
    assert_int_equal(task_retry_delay(1, 1, 0.0), 1);
    assert_int_equal(task_retry_delay(1, 30, -3.0), 30); /* out of range: the middle */
    for (int i = 0; i < 1000; i++) {
        double u = task_retry_unit();
        assert_true(u >= 0.0 && u < 1.0);
        int64_t d = task_retry_delay(2, 30, u);
        assert_true(d >= 48 && d <= 72);
    }
}

static int ok_handler(struct task_run *run)
{
    (void)run;
    return 0;
}

static int other_handler(struct task_run *run)
{
    task_run_error(run, "n=%d", 7);
    return USHER_EUPSTREAM;
}

static void test_registry(void **state)
{
    (void)state;
    task_registry_reset();
    assert_null(task_handler_find("a_task"));
    assert_int_equal(task_register("a_task", ok_handler), 0);
    assert_int_equal(task_register("a_task", other_handler), USHER_ECONFLICT);
    assert_int_equal(task_register("Bad-Name", ok_handler), USHER_EINVAL);
    assert_int_equal(task_register("", ok_handler), USHER_EINVAL);
    assert_int_equal(task_register("nofn", NULL), USHER_EINVAL);
    assert_ptr_equal(task_handler_find("a_task"), ok_handler);
    assert_int_equal(task_schedule_periodic("tick", 5, ok_handler), USHER_EINVAL);
    assert_int_equal(task_schedule_periodic("tick", 60, other_handler), 0);
    assert_int_equal(task_periodic_count(), 1);
    assert_string_equal(task_periodic_at(0)->name, "tick");
    assert_int_equal(task_periodic_at(0)->interval_seconds, 60);
    assert_null(task_periodic_at(1));
    struct task_run run;
    memset(&run, 0, sizeof run);
    assert_int_equal(task_handler_find("tick")(&run), USHER_EUPSTREAM);
    assert_string_equal(run.error, "n=7");
    task_registry_reset();
    assert_null(task_handler_find("tick"));
    assert_int_equal(task_periodic_count(), 0);
}

static void test_builtin_registration(void **state)
{
    (void)state;
    task_registry_reset();
    task_register_all();
    task_register_all(); /* idempotent */
    assert_non_null(task_handler_find("cleanup"));
    assert_non_null(task_handler_find("queue_probe"));
    assert_non_null(task_handler_find("sync_user_post_checkout"));
    assert_non_null(task_handler_find("waitlist_add_member"));
    assert_non_null(task_handler_find("expire_account"));
    assert_int_equal(task_periodic_count(), 4);
    int hourly = 0, every_minute = 0, daily = 0, quarterly = 0;
    for (int i = 0; i < task_periodic_count(); i++) {
        hourly += task_periodic_at(i)->interval_seconds == 3600;
        every_minute += task_periodic_at(i)->interval_seconds == 60;
        daily += task_periodic_at(i)->interval_seconds == 86400;
        quarterly += task_periodic_at(i)->interval_seconds == 900;
    }
    assert_int_equal(hourly, 1); /* cleanup */
    assert_int_equal(every_minute, 1); /* fill_waiting_seats */
    assert_int_equal(daily, 1); /* reconcile_subscriptions */
    assert_int_equal(quarterly, 1); /* close_expired_accounts */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schedule),
        cmocka_unit_test(test_long_schedule_about_eight_hours),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_builtin_registration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
