-- 0002_task_queue.sql (PostgreSQL) — what the worker needs beyond 0001's tasks table.
--
-- The SQLite file of the same number is the same schema in that dialect.
--
-- relayed_at: the Redis backend's relay sets it when it has put a queued row into the stream
-- (XADD); a retry, a requeue after an expired lease or an admin retry clear it so the row is
-- relayed again. The database backend ignores it.
ALTER TABLE tasks ADD COLUMN relayed_at BIGINT NULL;
-- What the relay scans: due, queued rows not yet in the stream.
CREATE INDEX tasks_relay_idx ON tasks (run_at, id) WHERE state = 'queued' AND relayed_at IS NULL;
-- What the cleanup job scans: finished rows by age.
CREATE INDEX tasks_finished_idx ON tasks (state, updated_at);

-- Cumulative outcome counts per task name, written in the transaction that records the
-- outcome, so every worker process adds to one figure and `/metrics` (served by another
-- process) reports usher_tasks_total{name,outcome} that never goes backwards, even when the
-- cleanup job deletes old done rows.
CREATE TABLE task_outcomes (
    name TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('done', 'retry', 'failed', 'expired')),
    total BIGINT NOT NULL DEFAULT 0 CHECK (total >= 0),
    PRIMARY KEY (name, outcome)
);
