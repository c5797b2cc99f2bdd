/*
 * sqlite_checkpoint.h — WAL checkpoints of a SQLite pool, off the committing thread.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1000 pages:
 * it copies those pages into the database file and syncs both files, several milliseconds
 * on an ordinary disk, which the request that committed (and every request queued behind
 * it on that web thread) waits for. A checkpointer replaces it for every handle of a file
 * database pool: a commit past the threshold only wakes the pool's checkpointer thread,
 * which runs a passive checkpoint (never blocks writers or readers) on its own handle.
 * Durability is unchanged: a commit is in the WAL either way, and synchronous=NORMAL syncs
 * the WAL at checkpoints, as before. Should the thread fail to start, the committing handle
 * checkpoints itself.
 *
 * Passive checkpoints alone let the WAL grow without end under steady writes (it is rewound
 * only when a writer finds every frame copied): past SQLITE_WAL_RESTART_PAGES the thread
 * runs a RESTART checkpoint, which briefly holds writers back and rewinds it.
 */
#ifndef USHER_DB_SQLITE_CHECKPOINT_H
#define USHER_DB_SQLITE_CHECKPOINT_H

#include <sqlite3.h>

/* WAL pages after which a checkpoint is due (SQLite's own default), and after which the
 * WAL is rewound: 64 MiB of 4 KiB pages, its index 128 KiB in each handle. Each rewind
 * holds writers back a few milliseconds (longer for a longer WAL); the webhook ingest p99
 * was the same with thresholds from 1,000 to 65,536 pages (bench/README.md), and this one
 * means a few rewinds a second under that load. */
#define SQLITE_CHECKPOINT_PAGES 1000
#define SQLITE_WAL_RESTART_PAGES 16384

struct sqlite_checkpointer;

/* For the database at filename, opened with flags; the thread starts at the first wake.
 * Returns NULL only when the mutex or condition variable cannot be set up. */
struct sqlite_checkpointer *sqlite_checkpointer_new(const char *filename, int flags);
/* Stops and joins the thread; NULL is a no-op. Call after every attached handle closed. */
void sqlite_checkpointer_free(struct sqlite_checkpointer *cp);
/* Makes db's commits wake cp instead of checkpointing (replaces SQLite's auto-checkpoint). */
void sqlite_checkpointer_attach(struct sqlite_checkpointer *cp, sqlite3 *db);

/* Checkpoints the thread ran successfully since cp was made (for tests). */
unsigned long sqlite_checkpointer_runs(struct sqlite_checkpointer *cp);
/* RESTART checkpoints that rewound the WAL (for tests). */
unsigned long sqlite_checkpointer_restarts(struct sqlite_checkpointer *cp);

#endif
