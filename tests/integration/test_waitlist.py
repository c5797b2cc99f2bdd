"""Waitlist (SPEC §3): local row, one background task per address, friendly replies."""

WAITLIST = "/onboarding/waitlist/submit/"
JOINED = {"message": "You're on the list! We'll be in touch soon."}
ALREADY = {"message": "You're already on the waitlist!"}


def tasks_for(db, name="waitlist_add_member"):
    return db.dict_rows("SELECT * FROM tasks WHERE name = ?", name)


def test_waitlist_page(server):
    r = server.get("/onboarding/waitlist/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")


def test_join_then_already(client, db):
    r = client.post_json(WAITLIST, {"email": "ada@example.com"})
    assert r.status_code == 200, r.text
    assert r.json() == JOINED

    r = client.post_json(WAITLIST, {"email": "  Ada@Example.COM "})
    assert r.status_code == 200, r.text
    assert r.json() == ALREADY

    emails = [row[0] for row in db.rows("SELECT email FROM waitlist_entries")]
    assert emails == ["ada@example.com"]

    tasks = tasks_for(db)
    assert len(tasks) == 1, tasks
    assert tasks[0]["state"] == "queued"


def test_one_task_per_address(client, db):
    for email in ("a@example.com", "b@example.com", "A@example.com"):
        assert client.post_json(WAITLIST, {"email": email}).status_code == 200
    assert db.scalar("SELECT COUNT(*) FROM waitlist_entries") == 2
    tasks = tasks_for(db)
    assert len(tasks) == 2
    assert all(t["state"] == "queued" for t in tasks)


INVALID_EMAILS = ["not-an-email", "a@b", "@example.com", "a@@example.com", "a b@example.com",
                  "", "   ", "x" * 250 + "@example.com"]


def test_invalid_email_is_400(client, db):
    for email in INVALID_EMAILS:
        r = client.post_json(WAITLIST, {"email": email})
        assert r.status_code == 400, (email, r.text)
        body = r.json()
        assert "errors" in body or "error" in body, (email, body)
    assert db.scalar("SELECT COUNT(*) FROM waitlist_entries") == 0
    assert tasks_for(db) == []


def test_email_must_be_a_string(client):
    r = client.post_json(WAITLIST, {"email": ["a@example.com"]})
    assert r.status_code == 400
