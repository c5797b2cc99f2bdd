"""The admin console's instance assignments page (SPEC §5, §9; issue 12 item 4), on SQLite
and PostgreSQL: active and waiting seats with state, product and instance filters, and
"allocate now" for a waiting seat — within the caps, with the user's sync queued and an audit
entry in the same transaction; no capacity → a clear message and nothing changed."""

from admin_ops_support import NOW, add_user, audit, flash, post
from admin_support import admin_app, admin_client, kc, keycloak_double  # noqa: F401 - fixtures

LIST = "/admin/assignments/"


def seed(db):
    db.exec("INSERT INTO products (id, name, slug, page, provisioner, created_at, updated_at) "
            "VALUES (1, 'Cloud', 'cloud', 'plan', 'group', 1, 1), "
            "(2, 'Photos', 'photos', 'addon', 'group', 1, 1)")
    db.exec("INSERT INTO instances (id, product_id, name, base_url, soft_cap, allocation_cap, "
            "hard_cap, allocated_seats, created_at, updated_at) VALUES "
            "(1, 1, 'foggy', 'https://foggy.example.test', 1, 1, 3, 1, 1, 1), "
            "(2, 2, 'shutter', 'https://shutter.example.test', 5, 5, 5, 0, 1, 1)")
    ann, carl, dora = add_user(db, "ann"), add_user(db, "carl"), add_user(db, "dora")
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (?, 1, 1, 'active', ?, ?)", ann, NOW, NOW)
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (?, 1, NULL, 'waiting_capacity', NULL, ?)",
            carl, NOW)
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (?, 2, NULL, 'waiting_capacity', NULL, ?)",
            dora, NOW)
    ids = dict(db.rows("SELECT u.username, a.id FROM instance_assignments a "
                       "JOIN users u ON u.id = a.user_id"))
    return ids


def seats(db, instance_id):
    return db.scalar("SELECT allocated_seats FROM instances WHERE id = ?", instance_id)


def test_list_and_filters(admin_client, db):
    seed(db)
    page = admin_client.get(LIST)
    assert page.status_code == 200
    assert "ann" in page.text and "carl" in page.text and "dora" in page.text
    assert page.text.count("Allocate now</button>") == 2
    assert "3 assignments match." in page.text
    waiting = admin_client.get(LIST + "?state=waiting_capacity").text
    assert "2 assignments match." in waiting
    assert "carl" in waiting and ">ann<" not in waiting
    cloud = admin_client.get(LIST + "?product=1").text
    assert "carl" in cloud and "dora" not in cloud
    foggy = admin_client.get(LIST + "?instance=1").text
    assert "ann" in foggy and "carl" not in foggy
    assert "No assignments match." in admin_client.get(LIST + "?instance=424242").text
    for query in ("state=gone", "product=x", "instance=-1", "product=1e3", "after=zz"):
        assert admin_client.get(LIST + "?" + query).status_code == 400, query


def test_allocate_now_without_capacity_changes_nothing(admin_client, db):
    ids = seed(db)
    r = post(admin_client, f"{LIST}{ids['carl']}/allocate/")
    assert r.status_code == 303
    kind, text = flash(admin_client, LIST + "?state=waiting_capacity")
    assert kind == "error"
    assert text.startswith("No instance of Cloud has room below its allocation cap: carl "
                           "keeps waiting.")
    assert seats(db, 1) == 1
    assert db.scalar("SELECT state FROM instance_assignments WHERE id = ?",
                     ids["carl"]) == "waiting_capacity"
    assert db.scalar("SELECT count(*) FROM tasks") == 0
    assert audit(db, "assignment.allocate") == []


def test_allocate_now_after_a_cap_is_raised(admin_client, db):
    ids = seed(db)
    db.exec("UPDATE instances SET allocation_cap = 2 WHERE id = 1")
    r = post(admin_client, f"{LIST}{ids['carl']}/allocate/")
    assert r.status_code == 303
    assert flash(admin_client, LIST) == ("success", "carl now has a seat on foggy (Cloud).")
    state, inst = db.rows("SELECT state, instance_id FROM instance_assignments WHERE id = ?",
                          ids["carl"])[0]
    assert state == "active" and inst == 1 and seats(db, 1) == 2
    carl = db.scalar("SELECT id FROM users WHERE username = 'carl'")
    sync = db.rows("SELECT args, state FROM tasks WHERE name = 'sync_user_post_checkout'")
    assert sync == [(f'{{"user_id": {carl}}}', "queued")] or \
        sync == [(f'{{"user_id":{carl}}}', "queued")]
    entries = audit(db, "assignment.allocate")
    assert len(entries) == 1 and entries[0]["actor"] == "bob"
    assert entries[0]["target_id"] == str(ids["carl"]) and "foggy" in entries[0]["detail"]

    # Twice: it is active now, so nothing more happens.
    post(admin_client, f"{LIST}{ids['carl']}/allocate/")
    kind, text = flash(admin_client, LIST)
    assert kind == "error" and text == "carl already has a seat on Cloud."
    assert seats(db, 1) == 2 and len(audit(db, "assignment.allocate")) == 1


def test_allocate_now_respects_the_allocation_cap_not_just_the_hard_cap(admin_client, db):
    ids = seed(db)
    # Room below hard_cap (3) but not below allocation_cap (1): automatic rules apply.
    post(admin_client, f"{LIST}{ids['carl']}/allocate/")
    assert seats(db, 1) == 1
    # An instance that is not auto-allocated is never chosen either.
    db.exec("UPDATE instances SET allocation_cap = 3, auto_allocate = false WHERE id = 1")
    post(admin_client, f"{LIST}{ids['carl']}/allocate/")
    assert seats(db, 1) == 1
    assert db.scalar("SELECT state FROM instance_assignments WHERE id = ?",
                     ids["carl"]) == "waiting_capacity"


def test_forged_ids_and_csrf(admin_client, db):
    ids = seed(db)
    for path in ("999999/allocate/", "0/allocate/", "x/allocate/", f"{ids['carl']}/",
                 f"{ids['carl']}/allocate/x"):
        assert post(admin_client, LIST + path).status_code == 404, path
    db.exec("UPDATE instances SET allocation_cap = 2 WHERE id = 1")
    r = post(admin_client, f"{LIST}{ids['carl']}/allocate/", csrf=False)
    assert r.status_code == 403
    assert seats(db, 1) == 1
    assert admin_client.get(f"{LIST}{ids['carl']}/allocate/").status_code == 405
