"""waitlist_add_member through a real worker against the Mailgun double: the address joins
the list once (upsert), synced_at is recorded, and a Mailgun outage is retried, not lost."""

import sys
import time

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import mailgun_double  # noqa: E402,F401 - fixture
from test_worker import migrated, workers  # noqa: E402,F401

LIST = "waitlist@mg.test"


def mailgun_env(mg):
    return {"MAILGUN_API_BASE": mg.url, "MAILGUN_API_KEY": "key-devstack",
            "MAILGUN_DOMAIN": "mg.test", "MAILGUN_WAITLIST_ADDRESS": LIST}


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@pytest.mark.backend("sqlite")
def test_waitlist_member_reaches_the_list(usher, db, workers, mailgun_double):
    app = usher(mailgun_env(mailgun_double))
    client = app.client()
    client.get("/onboarding/waitlist/")
    mailgun_double.fault(500, count=-1)  # Mailgun down: the task fails, is retried, not lost
    r = client.post_json("/onboarding/waitlist/submit/", {"email": "Grace@Example.test"})
    assert r.status_code == 200
    workers(dict(mailgun_env(mailgun_double), TASK_RETRY_DELAY="1"))
    task = "SELECT {} FROM tasks WHERE name = 'waitlist_add_member'"
    wait_for(lambda: (db.scalar(task.format("attempts")) or 0) >= 1
             and db.scalar(task.format("state")) == "queued", "the first attempt to fail")
    mailgun_double.state.faults = []
    wait_for(lambda: db.scalar("SELECT synced_at FROM waitlist_entries") is not None,
             "the member to be synced")
    members = mailgun_double.state.lists[LIST]["members"]
    assert list(members) == ["grace@example.test"]
    assert db.scalar(task.format("attempts")) >= 2
    assert db.scalar(task.format("state")) == "done"
