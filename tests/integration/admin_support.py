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


CATALOG = {
    "groups": ["usher-admins", "nextcloud-foggy", "nextcloud-cirrus", "100%_off's"],
    "products": [
        {"slug": "cloud", "name": "Cloud", "page": "plan", "display_order": 10,
         "is_featured": True, "requires_instance": True, "provisioner": "group",
         "tagline": "Files and calendars", "features": ["100 GB", "Calendars"],
         "prices": [{"stripe_price_id": "price_cloud_m", "billing_period": "monthly",
                     "amount": 1000, "currency": "USD"},
                    {"stripe_price_id": "price_cloud_y", "billing_period": "annual",
                     "amount": 10000, "currency": "USD"}]},
        {"slug": "vault", "name": "Vault", "page": "addon", "display_order": 20,
         "requires_instance": False, "standalone_url": "https://vault.example.test/",
         "prices": [{"stripe_price_id": "price_vault_m", "billing_period": "monthly",
                     "amount": 300, "currency": "USD"}]},
        {"slug": "storage-100", "name": "Storage 100%_x", "page": "storage",
         "display_order": 30, "is_addon": True, "parent": "cloud",
         "requires_instance": False, "is_coming_soon": True,
         "prices": [{"stripe_price_id": "price_storage_m", "billing_period": "monthly",
                     "amount": 200, "currency": "USD", "is_active": False,
                     "entitlements": {"storage_gb": 100}}]},
    ],
    "instances": [
        {"product": "cloud", "name": "foggy", "base_url": "https://foggy.example.test",
         "groups": ["nextcloud-foggy"], "soft_cap": 70, "allocation_cap": 90, "hard_cap": 100,
         "api_key": "secret-foggy-key"},
        {"product": "cloud", "name": "cirrus", "base_url": "https://cirrus.example.test",
         "groups": ["nextcloud-cirrus"], "auto_allocate": False},
    ],
}


def apply_catalog(run_usher, tmp_path, doc=None, name="catalog.json"):
    import json
    path = tmp_path / name
    path.write_text(json.dumps(doc or CATALOG))
    rc, out, err = run_usher(["catalog", "apply", str(path)])
    assert rc == 0, (out, err)
    return out + err


def fp_of(page, form_id_value):
    """The fp hidden field of the form that carries id=form_id_value."""
    for form in re.findall(r"<form.*?</form>", page, re.S):
        if re.search(rf'name="id" value="{form_id_value}"', form):
            m = re.search(r'name="fp" value="([0-9a-f]+)"', form)
            return m.group(1) if m else None
    return None
