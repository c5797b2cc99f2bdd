"""Catching up with Stripe without a webhook (SPEC §8, §11): `usher user refresh USERNAME`
re-reads one user's subscription, and the daily reconcile_subscriptions job re-reads every
live one — a missed update and a missed cancellation are both applied."""

from stripe_events_support import (  # noqa: F401 - fixtures
    IMMICH, NEXTCLOUD, STORAGE, wait_for, world)

from devstack.doubles.pytest_plugin import keycloak_double  # noqa: F401 - fixture
from test_worker import clock, migrated, workers  # noqa: F401 - fixtures


def test_user_refresh_applies_a_missed_update(world, run_usher):
    world.start_worker()
    sub_id, _ = world.signup("fresh@example.test", "fresh", [(NEXTCLOUD, 1), (IMMICH, 1)])
    u = world.user("fresh")
    # Stripe changed the subscription; the webhook never arrived.
    world.st.update_subscription(sub_id, items=[{"price": NEXTCLOUD, "quantity": 1},
                                                {"price": STORAGE, "quantity": 2}], emit=False)
    syncs_before = len(world.tasks("sync_user_post_checkout"))
    rc, out, err = run_usher(["user", "refresh", "FRESH"], env=world.env())
    assert rc == 0, (out, err)
    assert "status active" in out and "2 items" in out, out
    assert world.items(u["id"]) == sorted([(NEXTCLOUD, 1), (STORAGE, 2)])
    assert len(world.tasks("sync_user_post_checkout")) == syncs_before + 1
    assert world.user("fresh")["stripe_state_at"] == u["stripe_state_at"]  # no event applied

    rc, out, err = run_usher(["user", "refresh", "nobody"], env=world.env())
    assert rc == 1 and "no user named" in err, (out, err)
    rc, out, err = run_usher(["user", "refresh", "fresh"],
                             env=dict(world.env(), STRIPE_SECRET_KEY=None))
    assert rc == 2 and "STRIPE_SECRET_KEY" in err, (out, err)


def test_daily_reconcile_applies_a_missed_cancellation(world, clock):
    world.start_worker()
    sub_id, _ = world.signup("gone@example.test", "gone", [(NEXTCLOUD, 1)])
    u = world.user("gone")
    wait_for(lambda: world.tasks("reconcile_subscriptions", "done"), "the first reconcile")
    world.st.cancel_subscription(sub_id, emit=False)  # no webhook
    clock(86400)  # the next day's slot
    wait_for(lambda: len(world.tasks("reconcile_subscriptions", "done")) == 2,
             "the next day's reconcile")
    world.wait_idle()
    u = world.user("gone")
    assert u["subscription_status"] == "canceled"
    assert u["access_expires_at"] == u["canceled_at"] + 30 * 86400
    assert u["previous_items"] and NEXTCLOUD in u["previous_items"]
    assert world.items(u["id"]) == []
    assert world.kc_user(u["keycloak_id"])["enabled"] is False
    assert world.tasks("notify_subscription_canceled") == [{"user_id": u["id"]}]
    assert 'msg="subscriptions reconciled" checked=1 canceled=1 failed=0' in world.worker.log
