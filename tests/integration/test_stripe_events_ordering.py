"""Arrival order does not matter (SPEC §4 "Ordering"): the four events of one signup —
checkout.session.completed, customer.subscription.created, customer.subscription.updated (an
add-on bought a little later) and invoice.paid — delivered in each of their 24 orders, one
fresh signup per order against one server and worker, all end in the same state.

Subscription events that arrive before the checkout find no user with their subscription:
they are parked and queued again when the checkout links it, so even stripe_state_at (the
newest event applied) agrees across orders. What legitimately differs is the events' own
record: one older than a newer event already applied ends ignored ("older than the state
already applied"), and so enqueues no provisioning sync of its own.

Run with the database broker and with Redis (issue 5): all 24 orders each time, since one
run takes a few seconds either way.
"""

import itertools

import pytest

from stripe_events_support import BROKERS, NEXTCLOUD, STORAGE, world  # noqa: F401 - fixture

from devstack.doubles.pytest_plugin import keycloak_double  # noqa: F401 - fixture
from test_worker import migrated, workers  # noqa: F401 - fixtures

TYPES = ("checkout.session.completed", "customer.subscription.created",
         "customer.subscription.updated", "invoice.paid")


def prepare(world, n):
    """One paid signup whose four events exist but are not delivered: {type: event id}."""
    sid = world.checkout(f"perm{n}@example.test", f"perm{n}", [(NEXTCLOUD, 1)])
    sub_id, checkout_ev = world.pay(sid, deliver=False)
    with world.st.lock:
        t0 = world.st.state.events[checkout_ev]["created"]
    created = world.st.emit(sub_id, "customer.subscription.created", created=t0,
                            deliver=False)["id"]
    _, upd = world.st.update_subscription(
        sub_id, items=[{"price": NEXTCLOUD, "quantity": 1}, {"price": STORAGE, "quantity": 2}],
        created=t0 + 5)
    paid = world.st.emit(sub_id, "invoice.paid", created=t0, deliver=False)["id"]
    return t0, dict(zip(TYPES, (checkout_ev, created, upd[0], paid)))


def final_state(world, n, t0, events):
    u = world.user(f"perm{n}")
    assert u is not None, f"perm{n} has no user"
    kc = world.kc_user(u["keycloak_id"])
    attrs = kc.get("attributes", {})
    rows = world.db.rows("SELECT event_id, status, last_error FROM stripe_events")
    record = {e: (s, note) for e, s, note in rows}
    for t, e in events.items():
        status, note = record[e]
        assert status == "processed" or (status == "ignored" and note.startswith("older than")), \
            (n, t, status, note)
    assert record[events["checkout.session.completed"]][0] == "processed"
    syncs = world.tasks("sync_user_post_checkout")
    assert all(a != {"user_id": u["id"]} for a in world.tasks("sync_user_post_checkout", "queued"))
    pw = [a for a in world.tasks("send_keycloak_password_reset_email")
          if a == {"keycloak_id": u["keycloak_id"]}]
    return {
        "status": u["subscription_status"],
        "state_at": u["stripe_state_at"] - t0,
        "payment_disabled": bool(u["payment_disabled"]),
        "canceled_at": u["canceled_at"],
        "items": world.items(u["id"]),
        "seats": world.seats(u["id"]),
        "enabled": kc["enabled"],
        "attributes": sorted((k, v if not k.endswith("_instance") else ["<url>"])
                             for k, v in attrs.items()),
        "synced": {"user_id": u["id"]} in syncs,
        "password_tasks": len(pw),
    }


@pytest.mark.parametrize("world", BROKERS, indirect=True)
def test_every_arrival_order_ends_in_the_same_state(world):
    world.start_worker()
    orders = list(itertools.permutations(TYPES))
    assert len(orders) == 24
    prepared = [prepare(world, n) for n in range(len(orders))]
    for (t0, events), order in zip(prepared, orders):
        for t in order:
            world.deliver(events[t])
    all_events = [e for _, evs in prepared for e in evs.values()]
    world.wait_events(all_events)
    world.wait_idle()

    states = [final_state(world, n, t0, evs) for n, (t0, evs) in enumerate(prepared)]
    expected = {
        "status": "active", "state_at": 5, "payment_disabled": False, "canceled_at": None,
        "items": sorted([(NEXTCLOUD, 1), (STORAGE, 2)]), "seats": [("nextcloud", "active")],
        "enabled": True,
        "attributes": [("has_nextcloud", ["true"]), ("has_storage-100", ["true"]),
                       ("nextcloud_instance", ["<url>"]), ("storage_gb", ["200"])],
        "synced": True, "password_tasks": 1,
    }
    for order, state in zip(orders, states):
        assert state == expected, (order, state)
    assert world.db.scalar("SELECT count(*) FROM users") == 24
    # Half the orders deliver a subscription event before the checkout: parked, then replayed.
    assert world.worker.log.count("parked stripe event queued again") >= 12
    assert world.db.scalar("SELECT sum(allocated_seats) FROM instances") == 24
