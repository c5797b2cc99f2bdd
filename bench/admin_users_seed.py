#!/usr/bin/env python3
"""bench/admin_users_seed.py — N users for bench/admin_users.sh, fast, on either engine.

    admin_users_seed.py pg N             prints the PostgreSQL script (pipe it into psql)
    admin_users_seed.py sqlite FILE N    seeds a migrated SQLite file itself

Every user gets a username user<id>, an email user<id>@example.test and a Keycloak id; per ten
users six are active (each in one of 20 groups, holding a seat on the one instance), one
canceled, one past_due, one trialing, one never subscribed; every subscriber has a Cloud
item and every fourth a Vault add-on item too. Rows are made by the database itself
(generate_series on PostgreSQL, a recursive CTE on SQLite) in one transaction. One more
user, "benchadmin", is the admin the bench logs in as (member of ADMIN_GROUP, default
usher-admins, passed as the environment's ADMIN_GROUP).
"""

import os
import sqlite3
import sys

STATUS = ("active", "active", "active", "active", "active", "active", "canceled", "past_due",
          "trialing", "")
ADMIN_GROUP = os.environ.get("ADMIN_GROUP") or "usher-admins"


def catalog_sql(n):
    # Literal values only (the admin group's name is quoted by the caller's driver or below).
    return [
        "INSERT INTO groups (id, name) SELECT g, 'group-' || g FROM series WHERE g <= 20",
        "INSERT INTO products (id, name, slug, page, provisioner, requires_instance, "
        "created_at, updated_at) VALUES (1, 'Cloud', 'cloud', 'plan', 'group', true, 1, 1), "
        "(2, 'Vault', 'vault', 'addon', 'standalone', false, 1, 1)",
        f"INSERT INTO instances (id, product_id, name, base_url, soft_cap, allocation_cap, "
        f"hard_cap, allocated_seats, created_at, updated_at) VALUES (1, 1, 'big', "
        f"'https://big.example.test', {n}, {n}, {n}, 0, 1, 1)",
    ]


def status_case(col):
    whens = " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STATUS))
    return f"CASE {col} % 10 {whens} END"


def users_sql(kc_expr):
    return (
        "INSERT INTO users (id, username, email, keycloak_id, stripe_customer_id, "
        "stripe_subscription_id, subscription_status, date_joined) "
        f"SELECT g, 'user' || g, 'user' || g || '@example.test', {kc_expr}, "
        "CASE WHEN g % 10 <> 9 THEN 'cus_' || g END, CASE WHEN g % 10 <> 9 THEN 'sub_' || g END, "
        f"{status_case('g')}, 1700000000 + g FROM series")


REST = [
    "INSERT INTO user_groups (user_id, group_id) SELECT g, g % 20 + 1 FROM series WHERE g % 10 < 6",
    "INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
    "SELECT g, 1, 'price_cloud', 1 FROM series WHERE g % 10 <> 9",
    "INSERT INTO subscription_items (user_id, product_id, stripe_price_id, quantity) "
    "SELECT g, 2, 'price_vault', 1 FROM series WHERE g % 10 <> 9 AND g % 4 = 0",
    "INSERT INTO instance_assignments (user_id, product_id, instance_id, state, assigned_at, "
    "created_at) SELECT g, 1, 1, 'active', 1, 1 FROM series WHERE g % 10 < 6",
]


def admin_sql(n):
    name = ADMIN_GROUP.replace("'", "''")
    return [
        f"INSERT INTO groups (id, name) VALUES (21, '{name}')",
        f"INSERT INTO users (id, username, email, is_admin, subscription_status, date_joined) "
        f"VALUES ({n + 1}, 'benchadmin', 'benchadmin@example.test', true, '', 1)",
        f"INSERT INTO user_groups (user_id, group_id) VALUES ({n + 1}, 21)",
    ]


def pg_script(n):
    kc = ("lpad(to_hex(g), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(g), 12, '0')")
    out = ["\\set ON_ERROR_STOP on", "SET maintenance_work_mem = '256MB';", "BEGIN;",
           f"CREATE TEMP TABLE series AS SELECT g FROM generate_series(1, {n}) g;"]
    out += [s + ";" for s in catalog_sql(n)]
    out.append(users_sql(kc) + ";")
    out += [s + ";" for s in REST]
    out += [s + ";" for s in admin_sql(n)]
    out += [f"UPDATE instances SET allocated_seats = (SELECT count(*) FROM instance_assignments) "
            f"WHERE id = 1;"]
    for table in ("groups", "products", "instances", "users", "subscription_items",
                  "instance_assignments"):
        out.append(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                   f"(SELECT max(id) FROM {table}));")
    out += ["COMMIT;", "VACUUM ANALYZE;"]
    return "\n".join(out) + "\n"


def seed_sqlite(path, n):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -262144")
    con.execute("BEGIN")
    con.execute(f"CREATE TEMP TABLE series AS WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL "
                f"SELECT g + 1 FROM s WHERE g < {n}) SELECT g FROM s")
    kc = "printf('%08x-0000-4000-8000-%012x', g, g)"
    for sql in catalog_sql(n) + [users_sql(kc)] + REST + admin_sql(n):
        con.execute(sql)
    con.execute("UPDATE instances SET allocated_seats = (SELECT count(*) FROM "
                "instance_assignments) WHERE id = 1")
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "pg":
        sys.stdout.write(pg_script(int(sys.argv[2])))
    elif len(sys.argv) == 4 and sys.argv[1] == "sqlite":
        seed_sqlite(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
