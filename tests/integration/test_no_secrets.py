"""No plaintext secret survives a journey (issue 15, item 4).

A journey through the doubles — a paid signup (Stripe checkout, signed webhooks, the worker
creating the Keycloak account with the admin client's secret), a recovery code mailed through
the Mailgun double and verified, sessions created and used, a login session (written as a
login leaves it) on the dashboard — then every log the fixtures captured (serve and worker),
every text column of every table and everything under test-artifacts/ are searched for the
plaintext code, the raw session cookie values and every secret the world configures
(SECRET_KEY, the Keycloak admin secret, the Stripe secret and webhook keys, the Mailgun API
key; the OIDC client secret when set): zero hits. Hashes of them are fine (that is how
sessions and codes are stored).
"""

import re
from pathlib import Path

from stripe_events_support import NEXTCLOUD, world  # noqa: F401 - fixture
from devstack.doubles.pytest_plugin import keycloak_double, mailgun_double  # noqa: E402,F401
from test_recovery import code_for, kinds, send, verify, world_env  # noqa: F401
from test_worker import migrated, workers  # noqa: F401 - fixtures

SECRET_VARS = ("SECRET_KEY", "OIDC_RP_CLIENT_SECRET", "KEYCLOAK_ADMIN_CLIENT_SECRET",
               "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "MAILGUN_API_KEY")


def haystacks(world):
    """(where, text) for every log, every database text value and every artifact."""
    out = [("serve log", world.server.log)]
    out += [(f"worker log {i}", w.log) for i, w in enumerate(world.workers)]
    for table in world.db.tables():
        for row in world.db.rows(f"SELECT * FROM {table}"):
            out += [(f"db {table}", str(v)) for v in row if v is not None]
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    if artifacts.is_dir():
        for p in artifacts.rglob("*"):
            if p.is_file():
                out.append((f"artifact {p}", p.read_bytes().decode("latin-1")))
    return out


def test_no_plaintext_secret_anywhere(world, mailgun_double):
    env = world.env()
    ids = kinds(world.db)
    world.start_worker()
    world.signup("paid@example.test", "paid", [(NEXTCLOUD, 1)])
    assert world.user("paid")["subscription_status"] == "active"
    browser = world.server.client()
    assert send(browser, ids["recoverable"]).status_code == 200
    code = code_for(mailgun_double, "gone@example.test")
    assert verify(browser, "gone", code).status_code == 200
    cookies = [v for v in browser.cookies.values() if v]
    other = world.server.client()
    other.csrf()
    cookies += [v for v in other.cookies.values() if v]
    user_id = world.db.scalar("SELECT id FROM users WHERE username = 'gone'")
    raw = world.login_session(user_id)
    world.dashboard(raw)
    cookies.append(raw)

    needles = {"verification code": code}
    needles.update({f"session cookie {i}": c for i, c in enumerate(cookies)})
    needles.update({name: env[name] for name in SECRET_VARS if env.get(name)})
    assert len(needles) >= 4, needles.keys()
    # A six-digit code is matched as a whole number, so a timestamp holding the same digits
    # is no hit.
    patterns = {what: re.compile(r"(?<!\d)" + re.escape(n) + r"(?!\d)") for what, n in
                needles.items() if len(n) >= 6}
    hits = [(what, where) for where, text in haystacks(world)
            for what, pattern in patterns.items() if pattern.search(text)]
    assert not hits, hits
