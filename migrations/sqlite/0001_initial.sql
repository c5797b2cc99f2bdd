-- 0001_initial.sql (SQLite) — Usher's whole initial schema.
--
-- The PostgreSQL file of the same number has the same tables, columns, keys and CHECKs; the C
-- code sends identical SQL text to both, so names and meanings must stay in step. Differences
-- are only of dialect: ids are INTEGER PRIMARY KEY (the rowid) here and identity columns
-- there; booleans are INTEGER 0/1 here (guarded by CHECKs) and BOOLEAN there; regular
-- expressions become GLOB patterns here.
--
-- Conventions: timestamps are BIGINT Unix seconds written by the application from clock_now()
-- (never a SQL default, so tests can move time); money is BIGINT minor units beside a
-- currency code; JSON is stored as TEXT. PRAGMAs (WAL, foreign_keys, busy_timeout) belong to
-- the connection code, and the migration runner wraps this file in one transaction.

-- Groups mirror Keycloak groups; instances and users refer to them by id, people by name.
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255)
);

-- A sellable service. The slug is what entitlements, onboarding and Keycloak attributes use.
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
    slug TEXT NOT NULL UNIQUE
        CHECK (length(slug) <= 128 AND slug <> '' AND slug NOT GLOB '*[^a-z0-9_-]*'),
    stripe_product_id TEXT NULL
        CHECK (stripe_product_id IS NULL OR length(stripe_product_id) BETWEEN 1 AND 255),
    description TEXT NOT NULL DEFAULT '',
    -- Empty means "fall back to name / description".
    dashboard_name TEXT NOT NULL DEFAULT '' CHECK (length(dashboard_name) <= 128),
    dashboard_description TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT '' CHECK (length(icon) <= 64),
    -- Add-ons belong to a parent; deleting the parent orphans them rather than deleting them.
    parent_id INTEGER NULL REFERENCES products (id) ON DELETE SET NULL
        CHECK (parent_id IS NULL OR parent_id <> id),
    is_addon INTEGER NOT NULL DEFAULT 0 CHECK (is_addon IN (0, 1)),
    requires_instance INTEGER NOT NULL DEFAULT 1 CHECK (requires_instance IN (0, 1)),
    standalone_url TEXT NULL CHECK (standalone_url IS NULL OR length(standalone_url) <= 2048),
    page TEXT NOT NULL DEFAULT 'addon' CHECK (page IN ('plan', 'addon', 'storage')),
    display_order INTEGER NOT NULL DEFAULT 0,
    is_coming_soon INTEGER NOT NULL DEFAULT 0 CHECK (is_coming_soon IN (0, 1)),
    is_featured INTEGER NOT NULL DEFAULT 0 CHECK (is_featured IN (0, 1)),
    tagline TEXT NOT NULL DEFAULT '' CHECK (length(tagline) <= 128),
    features TEXT NOT NULL DEFAULT '', -- one feature per line
    footer_text TEXT NOT NULL DEFAULT '' CHECK (length(footer_text) <= 256),
    provisioner TEXT NOT NULL DEFAULT 'standalone' CHECK (provisioner IN ('group', 'standalone')),
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX products_listing_idx ON products (page, display_order, name);
CREATE INDEX products_parent_idx ON products (parent_id);

-- Maps a Stripe price to a product. Prices go with their product.
CREATE TABLE product_prices (
    id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    stripe_price_id TEXT NOT NULL UNIQUE CHECK (length(stripe_price_id) BETWEEN 1 AND 255),
    billing_period TEXT NOT NULL CHECK (billing_period IN ('monthly', 'annual')),
    amount BIGINT NOT NULL CHECK (amount >= 0), -- minor units
    currency TEXT NOT NULL DEFAULT 'USD'
        CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    entitlements TEXT NULL, -- JSON object of grants, e.g. {"storage_gb":100}
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX product_prices_product_idx ON product_prices (product_id, billing_period);

-- One deployment of a product. A product with instances cannot be deleted (RESTRICT): its
-- seats and assignments would silently vanish.
CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    base_url TEXT NOT NULL CHECK (length(base_url) BETWEEN 1 AND 2048),
    api_key TEXT NULL, -- secret; never shown in full after saving
    soft_cap INTEGER NOT NULL DEFAULT 70 CHECK (soft_cap >= 0),
    allocation_cap INTEGER NOT NULL DEFAULT 90 CHECK (allocation_cap >= 0),
    hard_cap INTEGER NOT NULL DEFAULT 100 CHECK (hard_cap >= 0),
    -- Maintained by allocation only; the hard cap holds even against a buggy caller.
    allocated_seats INTEGER NOT NULL DEFAULT 0
        CHECK (allocated_seats >= 0 AND allocated_seats <= hard_cap),
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    auto_allocate INTEGER NOT NULL DEFAULT 1 CHECK (auto_allocate IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (product_id, name),
    CHECK (soft_cap <= allocation_cap AND allocation_cap <= hard_cap)
);
CREATE INDEX instances_allocation_idx
    ON instances (product_id, is_active, auto_allocate, allocated_seats);

CREATE TABLE instance_groups (
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (instance_id, group_id)
);
CREATE INDEX instance_groups_group_idx ON instance_groups (group_id);

-- One row per person. Usernames are stored lowercase, which makes the plain UNIQUE
-- case-insensitive.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE
        CHECK (username = lower(username) AND length(username) BETWEEN 1 AND 255),
    email TEXT NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    date_joined BIGINT NOT NULL,
    last_login BIGINT NULL,
    keycloak_id TEXT NULL UNIQUE,
    stripe_customer_id TEXT NULL,
    stripe_subscription_id TEXT NULL,
    subscription_status TEXT NOT NULL DEFAULT '',
    canceled_at BIGINT NULL,
    access_expires_at BIGINT NULL, -- final expiry for recovery
    previous_items TEXT NULL,      -- JSON: line items at cancellation
    stripe_state_at BIGINT NOT NULL DEFAULT 0, -- Stripe `created` of the newest event applied
    payment_disabled INTEGER NOT NULL DEFAULT 0 CHECK (payment_disabled IN (0, 1))
);
CREATE INDEX users_stripe_customer_idx ON users (stripe_customer_id);
CREATE INDEX users_stripe_subscription_idx ON users (stripe_subscription_id);
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_status_idx ON users (subscription_status, access_expires_at);

CREATE TABLE user_groups (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_groups_group_idx ON user_groups (group_id);

-- Local cache of the Stripe subscription's line items. product_id is NULL for a price the
-- catalog does not know (kept so nothing Stripe bills is invisible).
CREATE TABLE subscription_items (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id INTEGER NULL REFERENCES products (id) ON DELETE SET NULL,
    stripe_price_id TEXT NOT NULL,
    stripe_item_id TEXT NULL, -- si_…
    quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity >= 1),
    current_period_end BIGINT NULL,
    UNIQUE (user_id, stripe_price_id)
);
CREATE INDEX subscription_items_product_idx ON subscription_items (product_id);

-- Which user holds a seat on which instance. A waiting row has no instance; an active one
-- always has one.
CREATE TABLE instance_assignments (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE RESTRICT,
    instance_id INTEGER NULL REFERENCES instances (id) ON DELETE RESTRICT,
    state TEXT NOT NULL CHECK (state IN ('active', 'waiting_capacity')),
    assigned_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, product_id),
    CHECK ((state = 'active' AND instance_id IS NOT NULL)
           OR (state = 'waiting_capacity' AND instance_id IS NULL))
);
CREATE INDEX instance_assignments_instance_idx ON instance_assignments (instance_id);
CREATE INDEX instance_assignments_waiting_idx
    ON instance_assignments (state, product_id, created_at);

-- Server-side sessions. Only the hash of the id is stored, so a database leak yields no
-- usable cookie. Expiry (idle and absolute) is computed from the two timestamps.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY, -- hex SHA-256 of the 256-bit id
    user_id INTEGER NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}', -- JSON
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_last_seen_idx ON sessions (last_seen_at);
CREATE INDEX sessions_created_idx ON sessions (created_at);

-- Generic fixed-window counters, keyed e.g. "code:ip:1.2.3.4".
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count INTEGER NOT NULL
);
CREATE INDEX rate_limits_window_idx ON rate_limits (window_start);

-- Email codes (signup and recovery). Only a keyed hash of the code is stored.
CREATE TABLE verification_codes (
    id INTEGER PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('signup', 'recovery')),
    email TEXT NOT NULL,
    session_hash TEXT NULL,
    code_hmac TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    superseded INTEGER NOT NULL DEFAULT 0 CHECK (superseded IN (0, 1))
);
CREATE INDEX verification_codes_email_idx ON verification_codes (email, purpose, created_at);
CREATE INDEX verification_codes_expires_idx ON verification_codes (expires_at);

-- Every verified webhook event, stored before it is processed (unique by Stripe's id, so a
-- redelivery is a no-op).
CREATE TABLE stripe_events (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    created BIGINT NOT NULL, -- Stripe's `created`
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
    received_at BIGINT NOT NULL,
    processed_at BIGINT NULL,
    last_error TEXT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0)
);
CREATE INDEX stripe_events_created_idx ON stripe_events (created);
CREATE INDEX stripe_events_status_idx ON stripe_events (status, received_at);

-- The task queue (and outbox for the Redis relay): rows are inserted in the transaction of
-- the change that causes them.
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    args TEXT NOT NULL, -- JSON
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at BIGINT NOT NULL,
    lease_until BIGINT NULL,
    worker TEXT NULL,
    last_error TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    dedup_key TEXT NULL UNIQUE
);
CREATE INDEX tasks_due_idx ON tasks (state, run_at);
CREATE INDEX tasks_lease_idx ON tasks (state, lease_until);

CREATE TABLE waitlist_entries (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    created_at BIGINT NOT NULL,
    synced_at BIGINT NULL -- added to the Mailgun list
);
CREATE INDEX waitlist_entries_created_idx ON waitlist_entries (created_at);

-- Who changed what. Rows outlive the users they mention.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    created_at BIGINT NOT NULL,
    actor_user_id INTEGER NULL REFERENCES users (id) ON DELETE SET NULL,
    actor TEXT NULL, -- e.g. "cli", "worker", a username
    action TEXT NOT NULL,
    target_type TEXT NULL,
    target_id TEXT NULL,
    detail TEXT NULL -- JSON
);
CREATE INDEX audit_log_created_idx ON audit_log (created_at);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
