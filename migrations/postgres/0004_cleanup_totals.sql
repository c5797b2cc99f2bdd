-- 0004_cleanup_totals.sql (PostgreSQL) — rows the periodic cleanup has deleted, by kind.
--
-- The SQLite file of the same number is the same schema in that dialect.
--
-- The cleanup runs in `usher worker`, while `/metrics` is served by `usher serve`: the totals
-- live here so that usher_cleanup_deleted_total{kind} (kind: sessions, codes, rate_limits,
-- stripe_events, tasks) adds up every worker's runs and never goes backwards.
CREATE TABLE cleanup_totals (
    kind TEXT PRIMARY KEY,
    total BIGINT NOT NULL DEFAULT 0 CHECK (total >= 0)
);
