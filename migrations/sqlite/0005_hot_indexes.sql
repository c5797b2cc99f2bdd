-- 0005_hot_indexes.sql (SQLite) — indexes for look-ups that run on every request or task
-- and otherwise read a whole large table (or a whole index of it).
--
-- The PostgreSQL file of the same number is the same schema in that dialect (both support
-- partial and expression indexes). tests/unit/test_query_plans.c EXPLAINs every hot query
-- against a seeded database and fails on a full scan of a large table.
--
-- Events parked until their subscription's user exists (status 'ignored', last_error naming
-- the subscription): every checkout.session.completed re-queues the ones for its
-- subscription. A partial index holds only parked rows, so it stays small however many
-- settled events the table keeps.
CREATE INDEX stripe_events_parked_idx ON stripe_events (last_error) WHERE status = 'ignored';

-- Email look-ups compare lower(email) (addresses are matched case-insensitively, while the
-- column keeps what the user typed): sign-up's "email taken", the password-setup resend,
-- account recovery.
CREATE INDEX users_email_lower_idx ON users (lower(email));

-- The periodic scheduler's "is one already queued or running?" check, under the write lock
-- on SQLite: only live tasks are indexed, not the done ones the table piles up.
CREATE INDEX tasks_live_name_idx ON tasks (name) WHERE state IN ('queued', 'running');
