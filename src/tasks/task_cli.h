/*
 * task_cli.h — `usher task …`: the operator's view of the queue (SPEC §8, §11).
 *
 *   usher task list [--failed | --state STATE] [--limit N]   newest first (default 50)
 *   usher task retry ID      a failed task runs again with fresh retries; a task waiting for
 *                            a retry runs now
 *   usher task probe [--count N] [--sleep-ms MS] [--timeout S] [--no-wait]
 *                            enqueues queue_probe tasks and waits until workers have run them
 *                            (exit 0), or reports that none did within S seconds (exit 1):
 *                            a smoke test that `usher worker` is consuming the queue
 *
 * Exit statuses: 0 success, 1 failure (not found, wrong state, time-out, database), 2 usage.
 */
#ifndef USHER_TASKS_TASK_CLI_H
#define USHER_TASKS_TASK_CLI_H

#include <stdio.h>

struct usher_config;

/* The usage text of `usher task` (stdout for --help, stderr on a usage error). */
void task_cli_usage(FILE *out);

/* argv[0] is the program, argv[1] "task". Returns the exit status. */
int task_cli_main(const struct usher_config *cfg, int argc, char **argv);

#endif
