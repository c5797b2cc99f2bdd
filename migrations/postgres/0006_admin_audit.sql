-- 0006_admin_audit.sql (PostgreSQL) — indexes for the admin console's audit-log page.
--
-- The SQLite file of the same number is the same schema in that dialect.
--
-- The page lists audit_log newest first by id and filters by actor or action; each filter
-- walks one index in id order, so a page costs the same however long the log grows.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
