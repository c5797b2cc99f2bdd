-- 0007_user_search.sql (SQLite) — what the admin console's users pages need at a million
-- users (SPEC §9; docs/admin.md "Users").
--
-- The PostgreSQL file of the same number has the same tables and columns, plus pg_trgm
-- indexes for substring search. SQLite has no trigram index, so here the search is by
-- prefix, served by B-tree range scans: usernames by their UNIQUE index, emails by 0001's
-- users_email_idx, and the Keycloak id by its UNIQUE index (docs/admin.md says which match
-- each database gives).

-- The status filter pages by id (keyset), newest first.
CREATE INDEX users_status_id_idx ON users (subscription_status, id);

-- Which user a task concerns (its args' integer user_id, filled by task_enqueue), so a user's
-- page lists their tasks through an index instead of scanning args.
ALTER TABLE tasks ADD COLUMN user_id BIGINT NULL;
UPDATE tasks SET user_id = json_extract(args, '$.user_id')
    WHERE json_valid(args) AND json_type(args, '$.user_id') = 'integer';
CREATE INDEX tasks_user_idx ON tasks (user_id, id) WHERE user_id IS NOT NULL;

-- A bulk action started from the users list: one task per selected user. The items keep the
-- user id even when the user is deleted meanwhile (then reported as "no such user").
CREATE TABLE admin_bulk_jobs (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL CHECK (action IN ('sync_keycloak', 'sync_assignments', 'refresh_stripe')),
    actor_user_id BIGINT NULL REFERENCES users (id) ON DELETE SET NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    total INTEGER NOT NULL CHECK (total >= 0)
);
CREATE TABLE admin_bulk_job_items (
    job_id BIGINT NOT NULL REFERENCES admin_bulk_jobs (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL,
    task_id BIGINT NULL,
    PRIMARY KEY (job_id, user_id)
) WITHOUT ROWID;
