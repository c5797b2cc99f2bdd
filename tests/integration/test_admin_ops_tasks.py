"""The admin console's task pages (SPEC §8, §9; issue 12 item 4), on SQLite and PostgreSQL:
the list by state and name with keyset pages, a task's page (arguments, last error,
attempts), retrying one failed task (what `usher task retry` does) and several after a
confirmation page, each retry with its audit entry; double retries, tasks that are not
failed, forged ids and selections, CSRF."""

import json

from admin_ops_support import add_task, audit, flash, post, task
from admin_support import admin_app, admin_client, kc, keycloak_double  # noqa: F401 - fixtures

LIST = "/admin/tasks/"


def test_list_filters_by_state_and_name(admin_client, db):
    failed = add_task(db, "sync_user_post_checkout", "failed", last_error="keycloak: 503")
    done = add_task(db, "waitlist_add_member", "done", {"email": "a@example.test"},
                    last_error=None)
    queued = add_task(db, "sync_user_post_checkout", "queued", last_error=None, attempts=0)
    page = admin_client.get(LIST)
    assert page.status_code == 200
    for tid in (failed, done, queued):
        assert f'href="/admin/tasks/{tid}/"' in page.text
    assert "3 tasks match." in page.text
    only_failed = admin_client.get(LIST + "?state=failed").text
    assert "1 task matches." in only_failed
    assert f"/admin/tasks/{failed}/" in only_failed and f"/admin/tasks/{done}/" not in only_failed
    assert "keycloak: 503" in only_failed
    # Only failed tasks can be selected for a retry.
    assert f'name="id" value="{failed}"' in page.text
    assert f'name="id" value="{done}"' not in page.text
    by_name = admin_client.get(LIST + "?name=sync_user_post_checkout").text
    assert f"/admin/tasks/{queued}/" in by_name and f"/admin/tasks/{done}/" not in by_name
    both = admin_client.get(LIST + "?name=sync_user_post_checkout&state=queued").text
    assert f"/admin/tasks/{queued}/" in both and f"/admin/tasks/{failed}/" not in both

    first = admin_client.get(LIST + "?limit=2").text
    assert f"/admin/tasks/{failed}/" not in first
    next_url = first.split('class="button" href="')[-1].split('"')[0].replace("&amp;", "&")
    second = admin_client.get(next_url).text
    assert f"/admin/tasks/{failed}/" in second and f"/admin/tasks/{queued}/" not in second


def test_bad_filters_are_400(admin_client, db):
    for query in ("state=lost", "name=%3Cscript%3E", "name=" + "a" * 300, "after=x.y",
                  "state=%01"):
        r = admin_client.get(LIST + "?" + query)
        assert r.status_code == 400, query


def test_task_page_shows_args_and_error(admin_client, db):
    tid = add_task(db, "waitlist_add_member", "failed", {"email": "<b>x</b>@example.test"},
                   last_error="mailgun: 500 <html>")
    page = admin_client.get(f"{LIST}{tid}/")
    assert page.status_code == 200
    assert "&quot;email&quot;: &quot;&lt;b&gt;x&lt;/b&gt;@example.test&quot;" in page.text
    assert "mailgun: 500 &lt;html&gt;" in page.text
    assert "4 of 4" in page.text and "Retry this task" in page.text
    for path in ("999999/", "0/", "x/", "1.5/"):
        assert admin_client.get(LIST + path).status_code == 404


def test_retry_one_failed_task(admin_client, db):
    tid = add_task(db, "sync_user_post_checkout", "failed")
    r = post(admin_client, f"{LIST}{tid}/retry/")
    assert r.status_code == 303 and r.headers["Location"] == f"{LIST}{tid}/"
    assert flash(admin_client, f"{LIST}{tid}/") == ("success",
                                                   f"Task {tid} is queued to run now.")
    t = task(db, tid)
    assert t["state"] == "queued" and t["attempts"] == 0
    entries = audit(db, "task.retry")
    assert len(entries) == 1 and entries[0]["actor"] == "bob"
    assert entries[0]["target_type"] == "task" and entries[0]["target_id"] == str(tid)
    detail = json.loads(entries[0]["detail"])
    assert "failed" in json.dumps(detail) and "queued" in json.dumps(detail)

    # Again: it is queued now, not failed: refused with a clear message, no second entry.
    post(admin_client, f"{LIST}{tid}/retry/")
    kind, text = flash(admin_client, f"{LIST}{tid}/")
    assert kind == "error" and "not failed (queued)" in text
    assert len(audit(db, "task.retry")) == 1


def test_done_task_is_not_retried(admin_client, db):
    tid = add_task(db, "sync_user_post_checkout", "done", last_error=None, attempts=1)
    post(admin_client, f"{LIST}{tid}/retry/")
    kind, text = flash(admin_client, f"{LIST}{tid}/")
    assert kind == "error" and "not failed (done)" in text
    assert task(db, tid)["state"] == "done"
    assert post(admin_client, f"{LIST}987654/retry/").status_code == 404


def test_bulk_retry_asks_first_then_reports_each_task(admin_client, db):
    a = add_task(db, "sync_user_post_checkout", "failed")
    b = add_task(db, "waitlist_add_member", "failed", {"email": "b@example.test"})
    c = add_task(db, "sync_user_post_checkout", "done", last_error=None, attempts=1)
    confirm = post(admin_client, LIST + "retry/", [("id", str(a)), ("id", str(b)),
                                                   ("id", str(c)), ("id", "999999")])
    assert confirm.status_code == 200
    assert "Retry 4 tasks?" in confirm.text and 'name="confirmed" value="yes"' in confirm.text
    assert task(db, a)["state"] == "failed"  # nothing yet
    assert audit(db, "task.retry") == []

    done = post(admin_client, LIST + "retry/", [("ids", f"{a},{b},{c},999999"),
                                                ("confirmed", "yes")])
    assert done.status_code == 200
    assert "2 queued to run now, 2 left alone." in done.text
    assert "not failed (done)" in done.text and "no such task" in done.text
    assert task(db, a)["state"] == "queued" and task(db, b)["state"] == "queued"
    assert task(db, c)["state"] == "done"
    assert sorted(e["target_id"] for e in audit(db, "task.retry")) == sorted([str(a), str(b)])

    # The same confirmation posted twice (back button): nothing is retried twice.
    again = post(admin_client, LIST + "retry/", [("ids", f"{a},{b}"), ("confirmed", "yes")])
    assert "0 queued to run now, 2 left alone." in again.text
    assert len(audit(db, "task.retry")) == 2


def test_bulk_retry_refuses_forged_selections(admin_client, db):
    a = add_task(db, "sync_user_post_checkout", "failed")
    for ids in ("", "abc", f"{a},x", f"{a},", "0", "-1", ",".join(["1"] * 101),
                "99999999999999999999"):
        r = post(admin_client, LIST + "retry/", [("ids", ids), ("confirmed", "yes")])
        assert r.status_code == 303, ids
        kind, _ = flash(admin_client, LIST + "?state=failed")
        assert kind == "error", ids
    assert task(db, a)["state"] == "failed"
    r = post(admin_client, LIST + "retry/", [("ids", str(a)), ("confirmed", "yes")], csrf=False)
    assert r.status_code == 403
    assert task(db, a)["state"] == "failed"
