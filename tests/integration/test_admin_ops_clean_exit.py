"""Every operations page and action of the admin console once — lists with filters and
pages, details, retries that work and retries refused, the bulk confirmation and result,
"allocate now" with and without room, bad input, the CSV — then a clean SIGTERM exit. Under
ASan+UBSan (scripts/test) a leak or undefined behaviour on any of those paths changes the exit
status, which the integration servers' kill() at teardown would never see."""

from admin_ops_support import NOW, add_event, add_task, add_user, post
from admin_support import admin_app, kc, keycloak_double, login_as  # noqa: F401 - fixtures


def test_every_ops_path_then_a_clean_exit(admin_app, db):
    client = login_as(admin_app, "bob")
    eid = add_event(db, "evt_a", "failed", payload='{"id": "evt_a", "data": {"object": {}}}')
    add_event(db, "evt_b", "processed")
    add_event(db, "evt_c", "ignored", payload="not json")
    t1 = add_task(db, "sync_user_post_checkout", "failed")
    t2 = add_task(db, "waitlist_add_member", "failed", {"email": "w@example.test"})
    t3 = add_task(db, "sync_user_post_checkout", "done", last_error=None)
    db.exec("INSERT INTO waitlist_entries (email, created_at) VALUES ('=x@example.test', ?), "
            "('y@example.test', ?)", NOW, NOW)
    db.exec("INSERT INTO products (id, name, slug, page, provisioner, created_at, updated_at) "
            "VALUES (1, 'Cloud', 'cloud', 'plan', 'group', 1, 1)")
    db.exec("INSERT INTO instances (id, product_id, name, base_url, soft_cap, allocation_cap, "
            "hard_cap, allocated_seats, created_at, updated_at) VALUES "
            "(1, 1, 'foggy', 'https://foggy.example.test', 0, 0, 2, 0, 1, 1)")
    uid = add_user(db, "wanda")
    db.exec("INSERT INTO instance_assignments (user_id, product_id, state, created_at) "
            "VALUES (?, 1, 'waiting_capacity', ?)", uid, NOW)
    aid = db.scalar("SELECT id FROM instance_assignments")

    gets = ["/admin/stripe-events/", "/admin/stripe-events/?status=failed&type=invoice.paid",
            "/admin/stripe-events/?q=evt_a&limit=1", "/admin/stripe-events/?limit=1",
            f"/admin/stripe-events/{eid}/", f"/admin/stripe-events/{eid + 2}/",
            "/admin/stripe-events/?status=x", "/admin/stripe-events/999/",
            "/admin/tasks/", "/admin/tasks/?state=failed&name=waitlist_add_member",
            "/admin/tasks/?limit=1", f"/admin/tasks/{t2}/", "/admin/tasks/?state=x",
            "/admin/waitlist/", "/admin/waitlist/?q=x%25_", "/admin/waitlist/?limit=1",
            "/admin/waitlist.csv", "/admin/waitlist.csv?q=example",
            "/admin/assignments/", "/admin/assignments/?state=waiting_capacity&product=1",
            "/admin/assignments/?instance=1&limit=1", "/admin/assignments/?product=x"]
    for path in gets:
        r = client.get(path)
        assert r.status_code in (200, 400, 404), (path, r.status_code)
        if "limit=1" in path and "Older" in r.text:  # the next page too
            next_url = r.text.split('class="button" href="')[-1].split('"')[0]
            assert client.get(next_url.replace("&amp;", "&")).status_code == 200
    for path in (f"/admin/stripe-events/{eid}/retry/", f"/admin/stripe-events/{eid}/retry/",
                 f"/admin/tasks/{t1}/retry/", f"/admin/tasks/{t3}/retry/",
                 f"/admin/assignments/{aid}/allocate/"):
        assert post(client, path).status_code == 303, path
    assert post(client, "/admin/tasks/retry/", [("id", str(t2)), ("id", str(t3))]) \
        .status_code == 200
    assert post(client, "/admin/tasks/retry/", [("ids", f"{t2},{t3},77"),
                                                ("confirmed", "yes")]).status_code == 200
    assert post(client, "/admin/tasks/retry/", [("ids", "x")]).status_code == 303
    db.exec("UPDATE instances SET allocation_cap = 2 WHERE id = 1")
    assert post(client, f"/admin/assignments/{aid}/allocate/").status_code == 303
    assert client.get("/admin/assignments/").status_code == 200  # shows the flash
    admin_app.stop()
