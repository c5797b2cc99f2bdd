"""Seeding and reading helpers for the admin console's operations pages (Stripe events,
tasks, waitlist, assignments): tests/integration/test_admin_ops_*.py."""

import html
import json
import re

NOW = 1790000000


def flash(client, path):
    """The flash the page at path shows (the redirect target of an action)."""
    page = client.get(path)
    assert page.status_code == 200, (page.status_code, page.text[:400])
    m = re.search(r'<p class="flash (\w+)"[^>]*>(.*?)</p>', page.text, re.S)
    return (m.group(1), html.unescape(m.group(2))) if m else (None, None)


def post(client, path, fields=(), csrf=True):
    data = list(fields)
    if csrf:
        data.append(("csrf_token", client.token))
    return client.post(path, data=data)


def audit(db, action):
    return db.dict_rows("SELECT actor, action, target_type, target_id, detail FROM audit_log "
                        "WHERE action = ? ORDER BY id", action)


def add_event(db, event_id, status="processed", type_="invoice.paid", payload=None,
              last_error=None, received_at=NOW):
    body = payload if payload is not None else json.dumps(
        {"id": event_id, "type": type_, "created": NOW, "data": {"object": {}}})
    db.exec("INSERT INTO stripe_events (event_id, type, created, payload, status, received_at, "
            "attempts, last_error) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
            event_id, type_, NOW, body, status, received_at, last_error)
    return db.scalar("SELECT id FROM stripe_events WHERE event_id = ?", event_id)


def add_task(db, name="sync_user_post_checkout", state="failed", args=None, dedup=None,
             last_error="keycloak: 503", attempts=4):
    db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, created_at, "
            "updated_at, last_error, dedup_key) VALUES (?, ?, ?, ?, 4, ?, ?, ?, ?, ?)",
            name, json.dumps(args if args is not None else {"user_id": 7}), state,
            attempts, NOW, NOW, NOW, last_error, dedup)
    return db.scalar("SELECT max(id) FROM tasks")


def task(db, task_id):
    rows = db.dict_rows("SELECT name, state, attempts, args, dedup_key FROM tasks WHERE id = ?",
                        task_id)
    return rows[0] if rows else None


def add_user(db, username):
    db.exec("INSERT INTO users (username, email, date_joined) VALUES (?, ?, ?)",
            username, f"{username}@example.test", NOW)
    return db.scalar("SELECT id FROM users WHERE username = ?", username)
