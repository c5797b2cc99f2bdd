"""The admin console's users pages (SPEC §9 "Users", issue 12 items 3, 5 and 6), on SQLite and
PostgreSQL, through the real server and worker: the list with its status filter, each kind of
search (and hostile ones), keyset pages and forged cursors, a user's page, and the three bulk
actions — each with one user failing at the Keycloak or Stripe double and one user deleted
before the task ran — with their result page, audit entries and CSRF."""

import re
import time
from urllib.parse import urlparse

import pytest

from admin_support import (  # noqa: F401 - fixtures
    ADMIN_ENV, admin_app, admin_client, kc, keycloak_double, login_as, text_of)
from devstack.doubles.pytest_plugin import stripe_double, webhook_receiver  # noqa: F401
from test_oidc import oidc_env
from test_worker import Worker, migrated, workers  # noqa: F401 - fixtures

def seed(db, n=60):
    """n users user001…: every third active (cus_/sub_ ids), the rest without subscription."""
    db.exec("INSERT INTO products (id, name, slug, page, provisioner, requires_instance, "
            "created_at, updated_at) VALUES (901, 'Cloud', 'cloud', 'plan', 'group', true, 1, 1)")
    db.exec("INSERT INTO groups (id, name) VALUES (901, 'beta-testers')")
    for i in range(1, n + 1):
        active = i % 3 == 0
        db.exec("INSERT INTO users (id, username, email, keycloak_id, stripe_customer_id, "
                "stripe_subscription_id, subscription_status, date_joined) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                1000 + i, f"user{i:03d}", f"person{i:03d}@example.test",
                f"0a1b2c3d-0000-4000-8000-{i:012d}",
                f"cus_T{i:03d}" if active else None, f"sub_T{i:03d}" if active else None,
                "active" if active else "", 1790000000 + i)
    if n < 3:
        return
    db.exec("INSERT INTO user_groups (user_id, group_id) VALUES (1003, 901)")
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id) "
            "VALUES (1003, 901, 'price_cloud')")


def rows(page):
    return re.findall(r'<a href="/admin/users/(\d+)/">([^<]+)</a>', page.text)


def names(page):
    return [n for _, n in rows(page)]


def next_url(page):
    m = re.search(r'<a class="button" href="([^"]+)" rel="next">', page.text)
    return m and m.group(1).replace("&amp;", "&")


def test_list_pages_filter_and_search(admin_client, db):
    seed(db)
    first = admin_client.get("/admin/users/")
    assert first.status_code == 200
    assert "<h1>Users</h1>" in first.text
    listed = names(first)
    assert len(listed) == 50 and listed[0] == "user060"  # newest first
    # Columns: Stripe link, short Keycloak id (groups and products: below).
    assert 'href="https://dashboard.stripe.com/customers/cus_T060"' in first.text
    assert '<abbr title="0a1b2c3d-0000-4000-8000-000000000060">0a1b2c3d</abbr>' in first.text
    second = admin_client.get(next_url(first))
    assert second.status_code == 200
    rest = names(second)
    assert set(rest) & set(listed) == set()
    assert "bob" in rest and len(set(listed + rest)) >= 61  # everybody, once
    assert next_url(second) is None

    active = admin_client.get("/admin/users/?status=active")
    assert active.status_code == 200
    assert names(active) == [f"user{i:03d}" for i in range(60, 0, -3)]
    assert "Matching from this page on: 20." in text_of(active.text)
    assert "<td>beta-testers</td>" in active.text and "<td>Cloud</td>" in active.text
    none = admin_client.get("/admin/users/?status=none&limit=5")
    assert len(names(none)) == 5
    nxt = next_url(none)
    assert "status=none" in nxt and "limit=5" in nxt
    assert admin_client.get("/admin/users/?status=bogus").status_code == 400

    def found(q):
        r = admin_client.get("/admin/users/", params={"q": q})
        assert r.status_code == 200, (q, r.status_code, text_of(r.text)[:300])
        return names(r)

    assert found("user01") == [f"user{i:03d}" for i in range(19, 9, -1)]
    assert found("  user010 ") == ["user010"]  # a pasted value's spaces are trimmed
    assert found("person007@") == ["user007"]
    assert found("PERSON007") == ["user007"]
    assert found("cus_T042") == ["user042"]
    assert found("sub_T042") == ["user042"]
    assert found("cus_T04") == []  # Stripe ids match exactly
    assert found("0a1b2c3d-0000-4000-8000-000000000033") == ["user033"]
    assert len(found("0a1b2c3d")) == 50  # the short id the list shows: a full page…
    r = admin_client.get("/admin/users/", params={"q": "0a1b2c3d"})
    assert "Matching from this page on: 60." in text_of(r.text)  # …of 60
    substring = found("er007")
    assert substring == (["user007"] if db.kind == "postgres" else [])
    # Combined with the status filter.
    r = admin_client.get("/admin/users/", params={"q": "user01", "status": "active"})
    assert names(r) == ["user018", "user015", "user012"]


@pytest.mark.parametrize("q", ["%", "%%%", "___", "\\", "' OR '1'='1", "user%01",
                               "<script>alert(1)</script>", "x\u00e9\u4e2d\U0001F600",
                               "1; DROP TABLE users; --"])
def test_hostile_searches_find_nothing_and_break_nothing(admin_client, db, q):
    seed(db, 5)
    r = admin_client.get("/admin/users/", params={"q": q})
    assert r.status_code in (200, 400), r.status_code
    assert names(r) == []
    assert "<script>alert(1)" not in r.text
    assert db.scalar("SELECT count(*) FROM users") >= 5


@pytest.mark.parametrize("q,message", [
    ("ab", "at least 3 characters"),
    ("a" * 201, "too long"),
    ("tab\there", "control characters"),
])
def test_bad_searches_get_a_clear_400(admin_client, db, q, message):
    r = admin_client.get("/admin/users/", params={"q": q})
    assert r.status_code == 400
    assert message in text_of(r.text)
    if q == "ab":  # refused by the search itself: the list page around the message, and its
        # form to fix it (the length and control characters are refused before, web/admin.c)
        assert re.search(r"\b1 users in all\.", text_of(r.text))
        assert 'name="q" value="ab"' in r.text


def test_bad_bytes_in_a_search_never_reach_a_query(admin_client):
    """The HTTP layer drops a query value that is not UTF-8 (the list is shown unfiltered);
    the search's own check (unit test_admin_users) would refuse it with a 400."""
    for q in ("%C0%AFxx", "abc%FF", "%ED%A0%80abc"):  # overlong, stray byte, surrogate
        r = admin_client.get("/admin/users/?q=" + q)
        assert r.status_code in (200, 400), q
        if r.status_code == 200:
            assert re.findall(r'name="q" value="([^"]*)"', r.text) == [""], q
        else:
            assert "plain text" in text_of(r.text)


@pytest.mark.parametrize("after", ["garbage", "0" * 2000, "00.00", "%00",
                                   "7b226964223a317d.deadbeef"])
def test_forged_or_foreign_cursors_get_a_clear_400(admin_client, db, after):
    seed(db, 3)
    r = admin_client.get("/admin/users/", params={"after": after})
    assert r.status_code == 400
    assert "Start again from the first page" in text_of(r.text)


def test_a_cursor_past_the_end_is_an_empty_page(admin_client, db):
    seed(db, 3)
    page = admin_client.get("/admin/users/?q=user&limit=1")
    assert names(page) == ["user003"]
    url = next_url(page)
    db.exec("DELETE FROM users WHERE id IN (1001, 1002)")
    r = admin_client.get(url)
    assert r.status_code == 200, (url, text_of(r.text))
    assert names(r) == [] and "No users match." in text_of(r.text)


def test_user_page(admin_client, db):
    seed(db, 3)
    db.exec("INSERT INTO instances (id, product_id, name, base_url, created_at, updated_at) "
            "VALUES (901, 901, 'foggy', 'https://foggy.example.test', 1, 1)")
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (1003, 901, NULL, 'waiting_capacity', NULL, 5)")
    db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, "
            "updated_at, user_id, last_error) VALUES ('sync_user_post_checkout', "
            "'{\"user_id\":1003}', 'failed', 4, 4, 1, 1, 1, 1003, 'Keycloak said no')")
    db.exec("INSERT INTO stripe_events (event_id, type, created, payload, status, received_at) "
            "VALUES ('evt_mine', 'invoice.paid', 1, '{\"customer\":\"cus_T003\"}', 'processed', 1),"
            " ('evt_other', 'invoice.paid', 1, '{\"customer\":\"cus_T0030\"}', 'processed', 1)")
    r = admin_client.get("/admin/users/1003/")
    assert r.status_code == 200
    text = text_of(r.text)
    for expected in ("user003", "person003@example.test", "beta-testers", "Cloud",
                     "price_cloud", "waiting for capacity", "sync_user_post_checkout",
                     "Keycloak said no", "evt_mine", "sub_T003",
                     "0a1b2c3d-0000-4000-8000-000000000003"):
        assert expected in text, expected
    assert "evt_other" not in text
    for bad in ("/admin/users/999999/", "/admin/users/abc/", "/admin/users/0/",
                "/admin/users/01003/", "/admin/users/1003", "/admin/users/1003/x",
                "/admin/users/-1/", "/admin/users/99999999999999999999999/"):
        r = admin_client.get(bad)
        assert r.status_code == 404, bad
        assert "Admin console" in r.text  # the admin layout, not a bare error


def test_non_admin_and_anonymous_are_kept_out(admin_app, db):
    seed(db, 2)
    alice = login_as(admin_app, "alice")
    for path in ("/admin/users/", "/admin/users/1001/", "/admin/users/bulk/1/"):
        assert alice.get(path).status_code == 403
        assert admin_app.client().get(path).status_code == 303
    r = alice.post("/admin/users/bulk/", data={"csrf_token": alice.token, "action":
                                               "sync_keycloak", "ids": "1001",
                                               "confirmed": "yes"})
    assert r.status_code == 403
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'admin_user_action'") == 0


def post_bulk(client, action, ids, confirmed=True, csrf=True):
    data = {"action": action, "ids": ",".join(str(i) for i in ids)}
    if csrf:
        data["csrf_token"] = client.token
    if confirmed:
        data["confirmed"] = "yes"
    return client.post("/admin/users/bulk/", data=data)


def test_bulk_needs_csrf_confirmation_and_a_sane_selection(admin_client, db):
    seed(db, 3)
    r = post_bulk(admin_client, "sync_keycloak", [1001], csrf=False)
    assert r.status_code == 403
    r = post_bulk(admin_client, "sync_keycloak", [1001, 1002], confirmed=False)
    assert r.status_code == 200
    assert "Sync to Keycloak: 2 users?" in text_of(r.text)
    assert 'name="confirmed" value="yes"' in r.text and 'value="1001,1002"' in r.text
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'admin_user_action'") == 0
    for action, ids, message in [("drop_tables", [1001], "Choose one of the bulk actions"),
                                 ("sync_keycloak", [], "Choose at least one user"),
                                 ("sync_keycloak", ["1001", "x"], "not a user id"),
                                 ("sync_keycloak", ["-3"], "not a user id"),
                                 ("sync_keycloak", ["0"], "not a user id"),
                                 ("sync_keycloak", list(range(1, 202)), "At most 200")]:
        r = post_bulk(admin_client, action, ids)
        assert r.status_code == 400, (action, ids)
        assert message in text_of(r.text)
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'admin_user_action'") == 0
    assert db.scalar("SELECT count(*) FROM admin_bulk_jobs") == 0
    assert admin_client.get("/admin/users/bulk/1/").status_code == 404
    assert admin_client.get("/admin/users/bulk/x/").status_code == 404


def start_job(client, action, ids):
    r = post_bulk(client, action, ids)
    assert r.status_code == 303, (r.status_code, text_of(r.text)[:300])
    m = re.fullmatch(r"/admin/users/bulk/(\d+)/", r.headers["Location"])
    assert m, r.headers["Location"]
    return r.headers["Location"]


def wait_finished(client, url, timeout=30):
    deadline = time.time() + timeout
    while True:
        page = client.get(url)
        assert page.status_code == 200
        assert '<script src="/static/admin_users.js" defer></script>' in page.text
        if "data-refresh" not in page.text:
            return page
        assert 'href="%s">Refresh</a>' % url in page.text  # works without JavaScript
        assert time.time() < deadline, text_of(page.text)
        time.sleep(0.3)


def outcome(page):
    """{user cell text: (result, error)} from the result table."""
    out = {}
    for tr in re.findall(r"<tr>\s*(<td>.*?)</tr>", page.text, re.S):
        cells = [text_of(c) for c in re.findall(r"<td>(.*?)</td>", tr, re.S)]
        out[cells[0]] = (cells[1], cells[2])
    return out


def with_worker(usher, workers, env):
    """The server, and a worker with the same configuration (it runs the bulk tasks)."""
    app = usher(env)
    workers(env)
    return app


@pytest.fixture
def kc_admin_app(usher, kc, workers):
    return with_worker(usher, workers, oidc_env(kc, **ADMIN_ENV))


def test_bulk_sync_to_keycloak(kc_admin_app, kc, db):
    client = login_as(kc_admin_app, "bob")
    seed(db, 3)
    linked = kc.add_user("user001", email="person001@example.test")
    db.exec("UPDATE users SET keycloak_id = ? WHERE id = 1001", linked["id"])
    # user002 keeps a Keycloak id Keycloak does not know: that user's task fails.
    db.exec("INSERT INTO users (id, username, subscription_status, date_joined) "
            "VALUES (1999, 'leaving', '', 1)")
    url = start_job(client, "sync_keycloak", [1001, 1002, 1999])
    db.exec("DELETE FROM users WHERE id = 1999")  # gone before the worker gets to it
    page = wait_finished(client, url)
    result = outcome(page)
    assert result["user001"] == ("done", "")
    assert result["user002"][0] == "failed" and result["user002"][1]
    assert result["#1999 (no such user)"] == ("failed", "no such user")
    assert "3 users: 1 done, 2 failed." in text_of(page.text)
    assert client.get("/static/admin_users.js").status_code == 200
    # Audited: the job, and each user.
    assert db.scalar("SELECT count(*) FROM audit_log WHERE action = 'users.bulk_action' "
                     "AND target_type = 'bulk_job' AND actor = 'bob'") == 1
    assert db.scalar("SELECT count(*) FROM audit_log WHERE action = "
                     "'user.bulk.sync_keycloak' AND target_type = 'user'") == 3
    detail = client.get("/admin/users/1001/")
    assert "user.bulk.sync_keycloak" in detail.text and "admin_user_action" in detail.text


def test_bulk_sync_instance_assignments(kc_admin_app, kc, db):
    client = login_as(kc_admin_app, "bob")
    seed(db, 6)
    db.exec("INSERT INTO instances (id, product_id, name, base_url, created_at, updated_at) "
            "VALUES (901, 901, 'foggy', 'https://foggy.example.test', 1, 1)")
    db.exec("INSERT INTO groups (id, name) VALUES (902, 'cloud-foggy')")
    db.exec("INSERT INTO instance_groups (instance_id, group_id) VALUES (901, 902)")
    # user003 is active with a Cloud item, unknown to Keycloak → the group grant fails there;
    # user006 is active with a Cloud item and linked → seated and granted.
    kc.add_group("cloud-foggy")
    linked = kc.add_user("user006", email="person006@example.test")
    db.exec("UPDATE users SET keycloak_id = ? WHERE id = 1006", linked["id"])
    db.exec("INSERT INTO subscription_items (user_id, product_id, stripe_price_id) "
            "VALUES (1006, 901, 'price_cloud')")
    url = start_job(client, "sync_assignments", [1003, 1006, 4242])
    page = wait_finished(client, url)
    result = outcome(page)
    assert result["user006"] == ("done", ""), (result, page.text)
    assert result["user003"][0] == "failed" and result["user003"][1], result
    assert result["#4242 (no such user)"] == ("failed", "no such user")
    assert db.scalar("SELECT count(*) FROM instance_assignments WHERE user_id = 1006 "
                     "AND state = 'active'") == 1


@pytest.fixture
def stripe_app(usher, kc, workers, stripe_double):
    return with_worker(usher, workers, oidc_env(kc, **ADMIN_ENV,
                                                 STRIPE_SECRET_KEY="sk_test_admin_users",
                                                 STRIPE_API_BASE=stripe_double.url))


def test_bulk_refresh_from_stripe(stripe_app, stripe_double, db):
    client = login_as(stripe_app, "bob")
    seed(db, 6)
    cus = stripe_double.add_customer(email="person003@example.test")
    cid = cus["id"]
    sub = stripe_double.add_subscription(cid, [{"price": "price_basic_monthly"}],
                                         status="past_due")
    db.exec("UPDATE users SET stripe_customer_id = ?, stripe_subscription_id = ? WHERE id = 1003",
            cid, sub["id"])
    # user006's sub_T006 is unknown to Stripe: its refresh fails with Stripe's error.
    url = start_job(client, "refresh_stripe", [1003, 1006, 5555])
    page = wait_finished(client, url)
    result = outcome(page)
    assert result["user003"] == ("done", ""), result
    assert result["user006"][0] == "failed" and result["user006"][1], result
    assert result["#5555 (no such user)"] == ("failed", "no such user")
    assert db.scalar("SELECT subscription_status FROM users WHERE id = 1003") == "past_due"
    assert db.scalar("SELECT count(*) FROM audit_log WHERE action = 'user.bulk.refresh_stripe'") \
        == 3


@pytest.mark.postgres
def test_migrate_says_what_to_do_when_the_role_may_not_create_pg_trgm(
        pg_url, usher_bin, base_env, workdir, backend):
    """Migration 0007 needs pg_trgm; a role without CREATE on its database gets a message
    naming the fix, nothing of 0007 is applied, and after a superuser creates the extension
    `usher migrate` completes."""
    if backend != "postgres":
        pytest.skip("PostgreSQL only (its own database and role)")
    import psycopg

    from conftest import replace_db_name, run, superuser_url

    name = f"usher_trgm_{int(time.time() * 1000) % 10**9}"
    role = name + "_role"
    admin = superuser_url(pg_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        conn.execute(f"CREATE DATABASE {name}")  # owned by the superuser: no CREATE for role
    try:
        with psycopg.connect(replace_db_name(admin, name), autocommit=True) as conn:
            conn.execute(f"GRANT ALL ON SCHEMA public TO {role}")
        u = urlparse(replace_db_name(pg_url, name))
        url = u._replace(netloc=f"{role}:pw@{u.hostname}:{u.port}").geturl()
        env = dict(base_env, DATABASE_URL=url)
        rc, out, err = run(usher_bin, ["migrate"], env, workdir, timeout=60)
        assert rc != 0
        assert "migration 0007 needs the pg_trgm extension and this role may not create it" \
            in err
        assert "CREATE EXTENSION pg_trgm" in err
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] < 7
            assert conn.execute("SELECT count(*) FROM information_schema.tables "
                                "WHERE table_name = 'admin_bulk_jobs'").fetchone()[0] == 0
        with psycopg.connect(replace_db_name(admin, name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_trgm")
        rc, out, err = run(usher_bin, ["migrate"], env, workdir, timeout=60)
        assert rc == 0, err
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
