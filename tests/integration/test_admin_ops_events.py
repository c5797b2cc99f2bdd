"""The admin console's Stripe events pages (SPEC §4, §9; issue 12 item 4), on SQLite and
PostgreSQL: the list with its status, type and event-id filters and keyset pages; an event's
page with its payload (indented, escaped); the retry of a failed or ignored event through
the normal processing path, once, with an audit entry; forged ids, bad filters and cursors,
and CSRF."""

import json

from admin_ops_support import NOW, add_event, add_task, audit, flash, post, task
from admin_support import admin_app, admin_client, kc, keycloak_double  # noqa: F401 - fixtures

LIST = "/admin/stripe-events/"


def test_list_filters_and_pages(admin_client, db):
    add_event(db, "evt_ok1", "processed", "invoice.paid")
    add_event(db, "evt_bad1", "failed", "customer.subscription.updated", last_error="kc down")
    add_event(db, "evt_ign1", "ignored", "charge.refunded", last_error="event type not handled")
    add_event(db, "evt_new1", "pending", "invoice.paid")
    page = admin_client.get(LIST)
    assert page.status_code == 200
    for e in ("evt_ok1", "evt_bad1", "evt_ign1", "evt_new1"):
        assert e in page.text
    assert page.text.index("evt_new1") < page.text.index("evt_ok1")  # newest first
    assert "4 events match." in page.text
    failed = admin_client.get(LIST + "?status=failed").text
    assert "1 event matches." in failed
    assert "evt_bad1" in failed and "evt_ok1" not in failed and "kc down" in failed
    by_type = admin_client.get(LIST + "?type=invoice.paid").text
    assert "evt_ok1" in by_type and "evt_new1" in by_type and "evt_bad1" not in by_type
    one = admin_client.get(LIST + "?q=evt_ign1").text
    assert "evt_ign1" in one and "evt_ok1" not in one
    assert "No events match." in admin_client.get(LIST + "?q=evt_nothing").text

    first = admin_client.get(LIST + "?limit=3").text
    assert "evt_new1" in first and "evt_ok1" not in first
    next_url = first.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    assert "after=" in next_url
    second = admin_client.get(next_url)
    assert second.status_code == 200
    assert "evt_ok1" in second.text and "evt_new1" not in second.text
    assert "Older events" not in second.text  # the last page


def test_bad_filters_and_cursors_get_a_clear_400(admin_client, db):
    add_event(db, "evt_x", "failed")
    for query in ("status=lost", "type=DROP%20TABLE", "q=%27%20OR%201%3D1", "q=cus_123",
                  "after=AAAA.forged", "after=" + "f" * 5000, "limit=0", "limit=100000"):
        r = admin_client.get(LIST + "?" + query)
        assert r.status_code == 400, (query, r.status_code)
        assert "Admin console" in r.text  # the admin layout, not a bare error
    # A cursor from another list is refused too.
    tasks_page = admin_client.get("/admin/tasks/")
    assert tasks_page.status_code == 200


def test_event_page_shows_the_payload_indented_and_escaped(admin_client, db):
    payload = json.dumps({"id": "evt_xss", "type": "invoice.paid", "created": NOW,
                          "data": {"object": {"note": "<script>alert(1)</script>"}}})
    eid = add_event(db, "evt_xss", "processed", payload=payload)
    page = admin_client.get(f"{LIST}{eid}/")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "\n  &quot;id&quot;: &quot;evt_xss&quot;" in page.text  # indented, escaped
    assert "Retry this event" not in page.text  # processed: not retryable


def test_forged_ids_are_404(admin_client, db):
    for path in ("999999/", "0/", "abc/", "-1/", "99999999999999999999999/", "1x/", "1/x/"):
        assert admin_client.get(LIST + path).status_code == 404, path
    r = post(admin_client, LIST + "424242/retry/")
    assert r.status_code == 404


def test_retry_failed_event_requeues_its_task_once_with_an_audit_entry(admin_client, db):
    eid = add_event(db, "evt_fail", "failed", last_error="keycloak: 503")
    tid = add_task(db, "process_stripe_event", "failed", {"event_id": "evt_fail"},
                   dedup="process_stripe_event:evt_fail", attempts=11)
    page = admin_client.get(f"{LIST}{eid}/")
    assert "Retry this event" in page.text
    assert f'<a href="/admin/tasks/{tid}/">Task {tid}</a> (failed)' in page.text
    r = post(admin_client, f"{LIST}{eid}/retry/")
    assert r.status_code == 303 and r.headers["Location"] == f"{LIST}{eid}/"
    assert flash(admin_client, f"{LIST}{eid}/") == (
        "success", "Event evt_fail is queued for processing again.")
    status, err = db.rows("SELECT status, last_error FROM stripe_events WHERE id = ?", eid)[0]
    assert status == "pending" and err is None
    t = task(db, tid)
    assert t["state"] == "queued" and t["attempts"] == 0
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'process_stripe_event'") == 1
    entries = audit(db, "stripe_event.retry")
    assert len(entries) == 1
    assert entries[0]["actor"] == "bob" and entries[0]["target_id"] == str(eid)
    assert "failed" in entries[0]["detail"] and "pending" in entries[0]["detail"]

    # A second retry (a double click, a second admin) finds it pending: nothing changes.
    r = post(admin_client, f"{LIST}{eid}/retry/")
    assert r.status_code == 303
    kind, text = flash(admin_client, f"{LIST}{eid}/")
    assert kind == "error" and "pending" in text
    assert len(audit(db, "stripe_event.retry")) == 1
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'process_stripe_event'") == 1


def test_retry_ignored_event_queues_processing(admin_client, db):
    eid = add_event(db, "evt_park", "ignored", "invoice.paid",
                    last_error="no user has subscription sub_1")
    add_task(db, "process_stripe_event", "done", {"event_id": "evt_park"},
             dedup="process_stripe_event:evt_park", last_error=None, attempts=1)
    assert post(admin_client, f"{LIST}{eid}/retry/").status_code == 303
    queued = db.dict_rows("SELECT args, dedup_key FROM tasks WHERE name = "
                          "'process_stripe_event' AND state = 'queued'")
    assert len(queued) == 1 and json.loads(queued[0]["args"]) == {"event_id": "evt_park"}
    assert db.scalar("SELECT status FROM stripe_events WHERE id = ?", eid) == "pending"


def test_processed_event_is_not_retried(admin_client, db):
    eid = add_event(db, "evt_done", "processed")
    r = post(admin_client, f"{LIST}{eid}/retry/")
    assert r.status_code == 303
    kind, text = flash(admin_client, f"{LIST}{eid}/")
    assert kind == "error" and "processed already" in text
    assert db.scalar("SELECT status FROM stripe_events WHERE id = ?", eid) == "processed"
    assert db.scalar("SELECT count(*) FROM tasks") == 0
    assert audit(db, "stripe_event.retry") == []


def test_retry_without_csrf_token_changes_nothing(admin_client, db):
    eid = add_event(db, "evt_csrf", "failed")
    r = post(admin_client, f"{LIST}{eid}/retry/", csrf=False)
    assert r.status_code == 403
    r = admin_client.post(f"{LIST}{eid}/retry/", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert db.scalar("SELECT status FROM stripe_events WHERE id = ?", eid) == "failed"
    assert audit(db, "stripe_event.retry") == []


def test_get_on_the_retry_url_changes_nothing(admin_client, db):
    eid = add_event(db, "evt_get", "failed")
    assert admin_client.get(f"{LIST}{eid}/retry/").status_code == 404
    assert db.scalar("SELECT status FROM stripe_events WHERE id = ?", eid) == "failed"
