"""Shared by the admin console's integration tests (tests/integration/test_admin_*.py): a
server wired to the Keycloak double's login client and Admin API (the console re-checks
ADMIN_GROUP membership there on every request), and logged-in clients.

    from admin_support import admin_app, admin_client, kc, keycloak_double  # fixtures

bob is in usher-admins, alice is not (test_oidc.kc)."""

import html
import re
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture
from test_oidc import Login, kc, oidc_env  # noqa: E402,F401 - fixtures reused

ADMIN_ENV = {"KEYCLOAK_ADMIN_CLIENT_ID": "usher-admin",
             "KEYCLOAK_ADMIN_CLIENT_SECRET": "usher-admin-secret"}


@pytest.fixture
def admin_app(usher, kc):
    return usher(oidc_env(kc, **ADMIN_ENV))


def login_as(app, username):
    """A client logged in as username; its csrf token is the one admin pages carry."""
    login = Login(app)
    r = login.run(username, next_path="/admin/")
    assert r.status_code == 303, (r.status_code, r.text[:300])
    client = login.client
    page = client.get("/admin/") if username == "bob" else client.get("/dashboard/")
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert m, page.text[:500]
    client.token = html.unescape(m.group(1))
    return client


@pytest.fixture
def admin_client(admin_app):
    return login_as(admin_app, "bob")


def remove_from_group(kc, username, group="usher-admins"):
    with kc.lock:
        u = kc.find_user(username)
        gid = next(g["id"] for g in kc.state.groups.values() if g["name"] == group)
        u["groups"].discard(gid)


def text_of(page):
    """The page's visible text, roughly: tags dropped, entities decoded, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
