-- 0008_admin_ops_indexes.sql (PostgreSQL) — indexes behind the admin console's operations lists.
--
-- The SQLite file of the same number is the same schema in that dialect.
--
-- The lists of Stripe events, tasks and instance assignments page by keyset, newest id first,
-- usually filtered by one state column. Without (state, id) an index scan of the primary key
-- would step over every row of the other states (millions of done tasks before the few
-- failed ones); with it a filtered page reads only the rows it shows.
CREATE INDEX stripe_events_admin_status_idx ON stripe_events (status, id);
CREATE INDEX stripe_events_admin_type_idx ON stripe_events (type, id);
CREATE INDEX tasks_admin_state_idx ON tasks (state, id);
CREATE INDEX tasks_admin_name_idx ON tasks (name, id);
CREATE INDEX instance_assignments_admin_state_idx ON instance_assignments (state, id);
