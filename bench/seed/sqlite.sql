-- bench/seed/sqlite.sql — the same rows as postgres.sql (read its header), in SQLite's
-- dialect: one transaction, numbers from a recursive CTE. {n} and {now} are replaced by
-- integers before it runs (bench/cost_growth.sh).
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
CREATE TEMP TABLE seq (i INTEGER PRIMARY KEY);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2 * {n})
INSERT INTO seq SELECT i FROM c;

INSERT INTO instances (product_id, name, base_url, soft_cap, allocation_cap, hard_cap,
                       created_at, updated_at)
SELECT p.id, 'bench-' || k.i, 'https://bench-' || k.i || '.example.test', 700, 900, 1000,
       {now}, {now}
FROM products p, seq k
WHERE p.slug = 'nextcloud' AND k.i <= ({n} + 499) / 500;

INSERT INTO users (id, username, email, first_name, last_name, date_joined, last_login,
                   keycloak_id, stripe_customer_id, stripe_subscription_id,
                   subscription_status, stripe_state_at)
SELECT i, 'user' || i, 'User' || i || '@example.test', 'First' || i, 'Last' || i,
       {now} - i, {now} - i % 86400, 'kc-' || i, 'cus_bench' || i, 'sub_bench' || i, 'active',
       {now} - i
FROM seq WHERE i <= {n};

INSERT INTO subscription_items (user_id, product_id, stripe_price_id, stripe_item_id, quantity,
                                current_period_end)
SELECT i, p.id, 'price_demo_nextcloud_monthly', 'si_bench' || i, 1, {now} + 86400 * 30
FROM products p, seq
WHERE p.slug = 'nextcloud' AND i <= {n};

INSERT INTO instance_assignments (user_id, product_id, instance_id, state, assigned_at, created_at)
SELECT s.i, b.product_id, b.id, 'active', {now} - s.i, {now} - s.i
FROM seq s
JOIN instances b ON b.name = 'bench-' || ((s.i - 1) / 500 + 1)
WHERE s.i <= {n};
UPDATE instances SET allocated_seats = (SELECT count(*) FROM instance_assignments a
                                        WHERE a.instance_id = instances.id)
WHERE name LIKE 'bench-%';

INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, last_seen_at)
SELECT printf('%064x', i), i, printf('%064x', i), '{"onboarding":{"step":2}}',
       {now} - 600 - (i % 2) * 86400, {now} - 60 - (i % 2) * 86400
FROM seq WHERE i <= {n};

INSERT INTO stripe_events (event_id, type, created, payload, status, received_at, processed_at,
                           attempts)
SELECT 'evt_seed' || i, 'customer.subscription.updated', {now} - i,
       '{"id":"evt_seed' || i || '","type":"customer.subscription.updated","data":{"object":'
       || '{"id":"sub_bench' || (i + 1) / 2 || '","status":"active","customer":"cus_bench'
       || (i + 1) / 2 || '"}}}', 'processed', {now} - i, {now} - i, 1
FROM seq;

INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, updated_at)
SELECT 'process_stripe_event', '{"event_id":"evt_seed' || i || '"}', 'done', 1, 5, {now} - i,
       {now} - i, {now} - i
FROM seq;
INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, updated_at)
SELECT 'sync_user', '{"user_id":' || i * 100 || '}', 'queued', 1, 5, {now} + 86400, {now}, {now}
FROM seq WHERE i <= max({n} / 100, 1);

INSERT INTO audit_log (created_at, actor, action, target_type, target_id, detail)
SELECT {now} - i, 'worker', 'seat.assigned', 'user', CAST(i AS TEXT), '{"product":"nextcloud"}'
FROM seq WHERE i <= {n};
DROP TABLE seq;
COMMIT;
