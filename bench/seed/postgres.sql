-- bench/seed/postgres.sql — :n users with what they bring in proportion, for
-- bench/cost_growth.sh (psql -v n=… -v now=…, on a migrated database with the demo catalog).
-- Per user: a subscription item and an active seat on the Nextcloud product (instances of
-- 1,000 seats, filled to 500, so their number grows with the users as it would in a
-- deployment), one session (half of them idle past the timeout, as the purge finds them),
-- two processed Stripe events, two finished tasks and an audit row; and one queued task per
-- hundred users, due tomorrow (retries waiting for their time). Set-based inserts from
-- generate_series: about a minute per million users on a 2-core machine.
\set ON_ERROR_STOP on
SET synchronous_commit = off;
BEGIN;
INSERT INTO instances (product_id, name, base_url, soft_cap, allocation_cap, hard_cap,
                       created_at, updated_at)
SELECT p.id, 'bench-' || k, 'https://bench-' || k || '.example.test', 700, 900, 1000, :now, :now
FROM products p, generate_series(1, (:n + 499) / 500) k
WHERE p.slug = 'nextcloud';

INSERT INTO users (id, username, email, first_name, last_name, date_joined, last_login,
                   keycloak_id, stripe_customer_id, stripe_subscription_id,
                   subscription_status, stripe_state_at)
SELECT i, 'user' || i, 'User' || i || '@example.test', 'First' || i, 'Last' || i,
       :now - i, :now - i % 86400, 'kc-' || i, 'cus_bench' || i, 'sub_bench' || i, 'active',
       :now - i
FROM generate_series(1, :n) i;
SELECT setval(pg_get_serial_sequence('users', 'id'), :n);

INSERT INTO subscription_items (user_id, product_id, stripe_price_id, stripe_item_id, quantity,
                                current_period_end)
SELECT i, p.id, 'price_demo_nextcloud_monthly', 'si_bench' || i, 1, :now + 86400 * 30
FROM products p, generate_series(1, :n) i
WHERE p.slug = 'nextcloud';

INSERT INTO instance_assignments (user_id, product_id, instance_id, state, assigned_at, created_at)
SELECT i, b.product_id, b.id, 'active', :now - i, :now - i
FROM generate_series(1, :n) i
JOIN instances b ON b.name = 'bench-' || ((i - 1) / 500 + 1);
UPDATE instances i SET allocated_seats = a.seats
FROM (SELECT instance_id, count(*) AS seats FROM instance_assignments GROUP BY instance_id) a
WHERE a.instance_id = i.id;

INSERT INTO sessions (id_hash, user_id, csrf_token, data, created_at, last_seen_at)
SELECT lpad(to_hex(i), 64, '0'), i, lpad(to_hex(i), 64, 'c'), '{"onboarding":{"step":2}}',
       :now - 600 - (i % 2) * 86400, :now - 60 - (i % 2) * 86400
FROM generate_series(1, :n) i;

INSERT INTO stripe_events (event_id, type, created, payload, status, received_at, processed_at,
                           attempts)
SELECT 'evt_seed' || i, 'customer.subscription.updated', :now - i,
       '{"id":"evt_seed' || i || '","type":"customer.subscription.updated","data":{"object":'
       || '{"id":"sub_bench' || (i + 1) / 2 || '","status":"active","customer":"cus_bench'
       || (i + 1) / 2 || '"}}}', 'processed', :now - i, :now - i, 1
FROM generate_series(1, 2 * :n) i;

INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, updated_at)
SELECT 'process_stripe_event', '{"event_id":"evt_seed' || i || '"}', 'done', 1, 5, :now - i,
       :now - i, :now - i
FROM generate_series(1, 2 * :n) i;
INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, updated_at)
SELECT 'sync_user', '{"user_id":' || i * 100 || '}', 'queued', 1, 5, :now + 86400, :now, :now
FROM generate_series(1, greatest(:n / 100, 1)) i;

INSERT INTO audit_log (created_at, actor, action, target_type, target_id, detail)
SELECT :now - i, 'worker', 'seat.assigned', 'user', i::text, '{"product":"nextcloud"}'
FROM generate_series(1, :n) i;
COMMIT;
SET client_min_messages = error; -- ANALYZE names every catalog it may not touch
ANALYZE;
