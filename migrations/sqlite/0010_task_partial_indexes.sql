-- 0010_task_partial_indexes.sql (SQLite) — two task indexes hold only the rows they serve.
--
-- Every task is inserted queued, and every insert wrote a page of each index on tasks: with
-- one index for the expired-lease sweep (state, lease_until) and one for the purge of done
-- tasks (state, updated_at), that was two of the pages each webhook ingest wrote for its task
-- (SQLite writes a changed page whole into the WAL at each commit). Both queries name their
-- state as a literal (src/db/task_store.c: state = 'running' AND lease_until < $1;
-- state = 'done' AND updated_at < $1), so a partial index on that state serves them as
-- before (tests/unit/test_query_plans.c), and a queued task touches neither.
DROP INDEX tasks_lease_idx;
CREATE INDEX tasks_lease_idx ON tasks (lease_until) WHERE state = 'running';
DROP INDEX tasks_finished_idx;
CREATE INDEX tasks_finished_idx ON tasks (updated_at) WHERE state = 'done';
