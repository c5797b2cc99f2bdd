"""Who may use the admin console (SPEC §9, issue 12 item 1), on SQLite and PostgreSQL:
anonymous → login and back; logged in but not an admin → 403 with the SPEC's words; an admin
→ 200; someone removed from ADMIN_GROUP in Keycloak loses access at the next request (and
users.is_admin follows); Keycloak unreachable → 503, never access."""

import re
import uuid
from urllib.parse import parse_qs, urlsplit

from admin_support import (  # noqa: F401 - fixtures
    admin_app, admin_client, kc, keycloak_double, login_as, remove_from_group, text_of)
from test_oidc import Login


def test_anonymous_goes_to_login_and_comes_back(admin_app):
    r = admin_app.client().get("/admin/")
    assert r.status_code == 303
    assert r.headers["Location"] == "/oidc/authenticate/?next=/admin/"
    login = Login(admin_app)
    back = login.run("bob", next_path="/admin/")
    assert back.status_code == 303
    assert back.headers["Location"] == "/admin/"
    page = login.client.get("/admin/")
    assert page.status_code == 200
    assert "<h1>Admin console</h1>" in page.text


def test_non_admin_gets_403_with_the_spec_message(admin_app, db):
    client = login_as(admin_app, "alice")
    r = client.get("/admin/")
    assert r.status_code == 403
    assert "Access denied. You must be a member of the usher-admins group." in text_of(r.text)
    assert "Admin console" not in r.text


def test_admin_sees_the_index_with_every_section(admin_client, db):
    db.exec("INSERT INTO groups (name) VALUES ('g1'), ('g2'), ('g3')")
    r = admin_client.get("/admin/")
    assert r.status_code == 200
    for label, url in [("Products", "/admin/products/"), ("Prices", "/admin/prices/"),
                       ("Instances", "/admin/instances/"), ("Groups", "/admin/groups/"),
                       ("Users", "/admin/users/"), ("Stripe events", "/admin/stripe-events/"),
                       ("Tasks", "/admin/tasks/"), ("Waitlist", "/admin/waitlist/"),
                       ("Assignments", "/admin/assignments/"), ("Audit log", "/admin/audit/")]:
        assert f'<a href="{url}">{label}</a>' in r.text, label
    # The Groups card shows its count (the groups table holds the three above and the ones
    # the login synced, if any).
    groups = db.scalar("SELECT count(*) FROM groups")
    card = re.search(r'href="/admin/groups/">Groups</a></h2>\s*<p class="admin-count">([^<]*)<',
                     r.text)
    assert card and card.group(1) == str(groups), r.text
    assert 'aria-current="page">Overview' in r.text
    assert r.headers["Cache-Control"] == "no-store"


def test_removed_from_the_group_loses_access_at_the_next_request(admin_client, kc, db):
    assert admin_client.get("/admin/").status_code == 200
    assert db.scalar("SELECT is_admin FROM users WHERE username = 'bob'") in (1, True)
    remove_from_group(kc, "bob")
    r = admin_client.get("/admin/")
    assert r.status_code == 403
    assert "You must be a member of the usher-admins group." in text_of(r.text)
    assert db.scalar("SELECT is_admin FROM users WHERE username = 'bob'") in (0, False)
    # The dashboard no longer offers the console either.
    assert "/admin/" not in admin_client.get("/dashboard/").text


def test_keycloak_unreachable_fails_closed(admin_client, kc, db):
    assert admin_client.get("/admin/").status_code == 200
    kc.down()
    try:
        r = admin_client.get("/admin/")
    finally:
        kc.up()
    assert r.status_code == 503
    assert "cannot be confirmed right now" in text_of(r.text)
    assert "Admin console" not in r.text
    # Not a membership answer: the flag stays, and access returns with Keycloak.
    assert db.scalar("SELECT is_admin FROM users WHERE username = 'bob'") in (1, True)
    assert admin_client.get("/admin/").status_code == 200


def test_admin_api_not_configured_fails_closed(usher, kc):
    from test_oidc import oidc_env
    app = usher(oidc_env(kc))  # login works, but no KEYCLOAK_ADMIN_CLIENT_*
    client = Login(app)
    assert client.run("bob", next_path="/admin/").status_code == 303
    r = client.client.get("/admin/")
    assert r.status_code == 503


def test_user_deleted_in_keycloak_loses_access(admin_client, kc, db):
    with kc.lock:
        uid = kc.find_user("bob")["id"]
        del kc.state.users[uid]
    r = admin_client.get("/admin/")
    assert r.status_code == 403
    assert db.scalar("SELECT is_admin FROM users WHERE username = 'bob'") in (0, False)


def test_login_next_keeps_an_admin_deep_link(admin_app):
    r = admin_app.client().get("/admin/")
    loc = urlsplit(r.headers["Location"])
    assert parse_qs(loc.query) == {"next": ["/admin/"]}


def join_groups(kc, username, names):
    """Puts username in new top-level groups (straight into the double's state: thousands of
    add_group calls would each scan every group)."""
    with kc.lock:
        u = kc.find_user(username)
        for name in names:
            gid = str(uuid.uuid4())
            kc.state.groups[gid] = {"id": gid, "name": name, "parent": None, "attributes": {}}
            u["groups"].add(gid)


def test_admin_in_many_groups_whose_names_contain_the_admin_group_is_admitted(admin_client,
                                                                               kc, db):
    """250 groups match Keycloak's `search` for usher-admins and sort before it: the check
    reads page after page (100 a page) until the exact name, on the third page."""
    join_groups(kc, "bob", [f"a-usher-admins-{i:03d}" for i in range(250)])
    r = admin_client.get("/admin/")
    assert r.status_code == 200, text_of(r.text)[:300]
    assert db.scalar("SELECT is_admin FROM users WHERE username = 'bob'") in (1, True)
    # Out of the group again: refused, however many look-alikes remain.
    remove_from_group(kc, "bob")
    assert admin_client.get("/admin/").status_code == 403


def test_admin_in_thousands_of_groups_is_admitted(admin_client, kc):
    """All of bob's 7,000 other groups (long names, sorting before usher-admins) in one
    answer would be over the HTTP client's 4 MiB cap on an answer, and a failed check fails
    closed (503): asking only for the groups named like usher-admins keeps the answer small."""
    join_groups(kc, "bob", [f"a-team-{i:05d}-" + "x" * 230 for i in range(7000)])
    r = admin_client.get("/admin/")
    assert r.status_code == 200, text_of(r.text)[:300]
