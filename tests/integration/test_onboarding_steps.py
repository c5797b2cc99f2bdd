"""Onboarding steps 2 and 3 (SPEC §3): plan, billing cycle, add-ons, storage add-ons.

Every test runs on SQLite and PostgreSQL against the demo catalog (devstack/catalog.json,
plus one storage add-on of another plan where a test needs it). What a step stores is read
back from the sessions table; every refused choice must leave the session as it was.
"""

import hashlib
import html
import json
import re

import pytest

from conftest import REPO

CATALOG = REPO / "devstack" / "catalog.json"
PLAN = "/onboarding/plan/"
ADDONS = "/onboarding/addons/"
CHECKOUT = "/onboarding/checkout/"


# --- helpers -------------------------------------------------------------------------------

def apply_catalog(run_usher, path=CATALOG):
    rc, out, err = run_usher(["catalog", "apply", str(path)])
    assert rc == 0, (out, err)


@pytest.fixture
def shop(usher, run_usher):
    """A server with the demo catalog."""
    server = usher()
    apply_catalog(run_usher)
    return server


@pytest.fixture
def shop_with_other_storage(usher, run_usher, tmp_path):
    """The demo catalog plus a storage add-on that belongs to the Essentials plan."""
    doc = json.loads(CATALOG.read_text())
    doc["products"].append({
        "slug": "essentials-drive", "name": "Essentials Drive", "parent": "essentials",
        "is_addon": True, "page": "storage", "requires_instance": False,
        "provisioner": "standalone", "description": "More room for the file drop.",
        "prices": [
            {"stripe_price_id": "price_t_drive_monthly", "billing_period": "monthly",
             "amount": 200, "currency": "USD"},
            {"stripe_price_id": "price_t_drive_annual", "billing_period": "annual",
             "amount": 2000, "currency": "USD"},
        ],
    })
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc))
    server = usher()
    apply_catalog(run_usher, path)
    return server


def onboarding_state(db, client):
    """The session's "onboarding" object (or {})."""
    id_hash = hashlib.sha256(client.session_cookie.encode()).hexdigest()
    raw = db.scalar("SELECT data FROM sessions WHERE id_hash = ?", id_hash)
    return json.loads(raw or "{}").get("onboarding", {})


def step1(client, name="Ada"):
    r = client.post_form("/onboarding/", {"first_name": name})
    assert r.status_code == 303, r.text[:500]
    assert r.headers["Location"] == PLAN


def choose_plan(client, plan="nextcloud", cycle="monthly", addons=()):
    fields = [("csrf_token", client.csrf()), ("plan", plan), ("billing_cycle", cycle)]
    fields += [("addons", a) for a in addons]
    return client.post(PLAN, data=fields)


def choose_storage(client, addons=()):
    fields = [("csrf_token", client.csrf())] + [("addons", a) for a in addons]
    return client.post(ADDONS, data=fields)


def post_plan_raw(client, fields):
    return client.post(PLAN, data=[("csrf_token", client.csrf())] + list(fields))


def set_flag(db, table, column, value, where, *params):
    db.exec(f"UPDATE {table} SET {column} = {'TRUE' if value else 'FALSE'} WHERE {where}",
            *params)


def input_tag(page, name, value):
    """The <input> element with this name and value, or None."""
    for m in re.finditer(r"<input\b[^>]*>", page):
        tag = m.group(0)
        if f'name="{name}"' in tag and f'value="{value}"' in tag:
            return tag
    return None


def alert_text(page):
    m = re.search(r'<[^>]+role="alert"[^>]*>(.*?)</', page, re.S)
    return html.unescape(m.group(1)).strip() if m else None


def assert_accessible(page):
    """Every visible input has a label; no inline styles or scripts (the CSP forbids them)."""
    for m in re.finditer(r"<input\b[^>]*>", page):
        tag = m.group(0)
        if 'type="hidden"' in tag:
            continue
        ident = re.search(r'\bid="([^"]+)"', tag)
        assert ident, f"input without id: {tag}"
        assert f'<label for="{ident.group(1)}"' in page, f"no label for {tag}"
    assert not re.search(r"\bstyle=", page), "inline style attribute"
    assert "<style" not in page
    for m in re.finditer(r"<script\b[^>]*>", page):
        assert "src=" in m.group(0), "inline script"
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"


# --- step order ----------------------------------------------------------------------------

def test_plan_step_needs_a_first_name(shop):
    c = shop.client()
    r = c.get(PLAN)
    assert r.status_code == 303 and r.headers["Location"] == "/onboarding/"
    c.csrf()  # a session, but no first name yet
    r = c.get(PLAN)
    assert r.status_code == 303 and r.headers["Location"] == "/onboarding/"
    r = choose_plan(c)
    assert r.status_code == 303 and r.headers["Location"] == "/onboarding/"


def test_addons_step_needs_a_plan(shop, db):
    c = shop.client()
    r = c.get(ADDONS)
    assert r.status_code == 303 and r.headers["Location"] == PLAN
    step1(c)
    r = c.get(ADDONS)
    assert r.status_code == 303 and r.headers["Location"] == PLAN
    r = choose_storage(c, ["storage-100"])
    assert r.status_code == 303 and r.headers["Location"] == PLAN
    assert "storage_addons" not in onboarding_state(db, c)


def test_forms_need_the_csrf_token(shop):
    c = shop.client()
    step1(c)
    r = c.post(PLAN, data={"plan": "nextcloud", "billing_cycle": "monthly"})
    assert r.status_code == 403


# --- step 2 --------------------------------------------------------------------------------

def test_plan_page_lists_plans_prices_and_addons(shop):
    c = shop.client()
    step1(c, "Ada")
    r = c.get(PLAN)
    assert r.status_code == 200, r.text[:500]
    page = r.text
    assert "Hi Ada!" in page
    for text in ("Nextcloud", "Essentials", "Teams", "Bitwarden", "Immich",
                 "$10.00 / month", "$100.00 / year", "$5.00 / month", "$50.00 / year",
                 "$3.00 / month", "$40.00 / year", "Coming soon",
                 "Calendars and contacts that sync everywhere"):
        assert text in page, text
    # Plans in display order; storage add-ons are not on this step.
    assert page.index("Nextcloud") < page.index("Essentials") < page.index("Teams")
    assert "storage-100" not in page
    # Featured is highlighted; coming soon is shown but cannot be selected.
    assert re.search(r'class="product-card featured"[^>]*>\s*<div class="product-head">\s*'
                     r'<input[^>]*value="nextcloud"', page)
    teams = input_tag(page, "plan", "teams")
    assert teams and "disabled" in teams
    assert "disabled" not in input_tag(page, "plan", "nextcloud")
    assert input_tag(page, "addons", "bitwarden") and 'type="checkbox"' in input_tag(
        page, "addons", "bitwarden")
    monthly = input_tag(page, "billing_cycle", "monthly")
    assert "checked" in monthly
    assert_accessible(page)


def test_plan_post_stores_the_choice(shop, db):
    c = shop.client()
    step1(c)
    r = choose_plan(c, "nextcloud", "annual", ["bitwarden", "immich"])
    assert r.status_code == 303, r.text[:500]
    assert r.headers["Location"] == ADDONS
    st = onboarding_state(db, c)
    assert st["first_name"] == "Ada"
    assert st["plan"] == "nextcloud"
    assert st["billing_cycle"] == "annual"
    assert st["general_addons"] == ["bitwarden", "immich"]
    assert st["addons"] == ["bitwarden", "immich"]
    # The page shows the stored choice again.
    page = c.get(PLAN).text
    assert "checked" in input_tag(page, "plan", "nextcloud")
    assert "checked" in input_tag(page, "billing_cycle", "annual")
    assert "checked" in input_tag(page, "addons", "immich")


def test_plan_without_addons(shop, db):
    c = shop.client()
    step1(c)
    r = choose_plan(c, "essentials", "monthly")
    assert r.status_code == 303
    st = onboarding_state(db, c)
    assert st["plan"] == "essentials" and st["general_addons"] == [] and st["addons"] == []


BAD_PLAN_POSTS = {
    "unknown plan": [("plan", "nope"), ("billing_cycle", "monthly")],
    "coming-soon plan": [("plan", "teams"), ("billing_cycle", "monthly")],
    "add-on given as plan": [("plan", "bitwarden"), ("billing_cycle", "monthly")],
    "storage given as plan": [("plan", "storage-100"), ("billing_cycle", "monthly")],
    "no plan": [("billing_cycle", "monthly")],
    "empty plan": [("plan", ""), ("billing_cycle", "monthly")],
    "bad slug": [("plan", "Next Cloud'--"), ("billing_cycle", "monthly")],
    "weekly cycle": [("plan", "nextcloud"), ("billing_cycle", "weekly")],
    "no cycle": [("plan", "nextcloud")],
    "cycle case": [("plan", "nextcloud"), ("billing_cycle", "Monthly")],
    "unknown add-on": [("plan", "nextcloud"), ("billing_cycle", "monthly"),
                       ("addons", "nope")],
    "plan given as add-on": [("plan", "nextcloud"), ("billing_cycle", "monthly"),
                             ("addons", "essentials")],
    "storage given as general add-on": [("plan", "nextcloud"), ("billing_cycle", "monthly"),
                                        ("addons", "storage-100")],
    "duplicate add-on": [("plan", "nextcloud"), ("billing_cycle", "monthly"),
                         ("addons", "bitwarden"), ("addons", "bitwarden")],
    "too many add-ons": [("plan", "nextcloud"), ("billing_cycle", "monthly")] +
                        [("addons", f"a{i}") for i in range(40)],
}


@pytest.mark.parametrize("case", sorted(BAD_PLAN_POSTS))
def test_plan_tampering_is_refused(shop, db, case):
    c = shop.client()
    step1(c)
    before = onboarding_state(db, c)
    r = post_plan_raw(c, BAD_PLAN_POSTS[case])
    assert r.status_code == 400, (case, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/html")
    message = alert_text(r.text)
    assert message, f"no role=alert error for {case}"
    assert onboarding_state(db, c) == before
    assert_accessible(r.text)


def test_refusal_messages_are_clear(shop):
    c = shop.client()
    step1(c)
    cases = [
        ([("plan", "teams"), ("billing_cycle", "monthly")],
         "Teams is coming soon and can't be chosen yet."),
        ([("plan", "nextcloud"), ("billing_cycle", "weekly")],
         "Choose monthly or annual billing."),
        ([("plan", "bitwarden"), ("billing_cycle", "monthly")],
         "That plan is not available. Choose one of the plans shown."),
        ([("billing_cycle", "annual")], "Choose a plan."),
        ([("plan", "nextcloud"), ("billing_cycle", "monthly"), ("addons", "immich"),
          ("addons", "immich")], "Each add-on can be chosen only once."),
        ([("plan", "nextcloud"), ("billing_cycle", "monthly"), ("addons", "teams")],
         "One of the chosen add-ons is not available."),
    ]
    for fields, expected in cases:
        r = post_plan_raw(c, fields)
        assert r.status_code == 400
        assert alert_text(r.text) == expected, fields


def test_refused_post_keeps_the_visitors_choices(shop):
    c = shop.client()
    step1(c)
    r = post_plan_raw(c, [("plan", "essentials"), ("billing_cycle", "annual"),
                          ("addons", "immich"), ("addons", "nope")])
    assert r.status_code == 400
    assert "checked" in input_tag(r.text, "plan", "essentials")
    assert "checked" in input_tag(r.text, "billing_cycle", "annual")
    assert "checked" in input_tag(r.text, "addons", "immich")
    assert 'aria-describedby="plan-error"' in r.text


def test_inactive_products_are_refused(shop, db):
    c = shop.client()
    step1(c)
    set_flag(db, "products", "is_active", False, "slug = ?", "essentials")
    set_flag(db, "products", "is_active", False, "slug = ?", "immich")
    page = c.get(PLAN).text
    assert input_tag(page, "plan", "essentials") is None
    assert input_tag(page, "addons", "immich") is None
    assert choose_plan(c, "essentials").status_code == 400
    assert choose_plan(c, "nextcloud", addons=["immich"]).status_code == 400
    assert "plan" not in onboarding_state(db, c)
    assert choose_plan(c, "nextcloud", addons=["bitwarden"]).status_code == 303


def test_coming_soon_addon_is_refused(shop, db):
    c = shop.client()
    step1(c)
    set_flag(db, "products", "is_coming_soon", True, "slug = ?", "bitwarden")
    page = c.get(PLAN).text
    assert "disabled" in input_tag(page, "addons", "bitwarden")
    r = choose_plan(c, "nextcloud", addons=["bitwarden"])
    assert r.status_code == 400
    assert alert_text(r.text) == "Bitwarden is coming soon and can't be chosen yet."


def test_plan_without_a_price_for_the_cycle_is_refused(shop, db):
    c = shop.client()
    step1(c)
    set_flag(db, "product_prices", "is_active", False, "stripe_price_id = ?",
             "price_demo_essentials_annual")
    r = choose_plan(c, "essentials", "annual")
    assert r.status_code == 400
    assert alert_text(r.text) == "Essentials is not available with annual billing."
    assert "plan" not in onboarding_state(db, c)
    assert choose_plan(c, "essentials", "monthly").status_code == 303
    # The same for an add-on without a price for the cycle.
    set_flag(db, "product_prices", "is_active", False, "stripe_price_id = ?",
             "price_demo_immich_monthly")
    r = choose_plan(c, "nextcloud", "monthly", ["immich"])
    assert r.status_code == 400
    assert alert_text(r.text) == "Immich is not available with monthly billing."


# --- step 3 --------------------------------------------------------------------------------

def test_storage_step_lists_the_plans_storage(shop):
    c = shop.client()
    step1(c)
    assert choose_plan(c, "nextcloud", "monthly", ["bitwarden"]).status_code == 303
    r = c.get(ADDONS)
    assert r.status_code == 200, r.text[:500]
    assert "Extra Storage 100 GB" in r.text
    assert "$3.00 / month" in r.text
    assert "$30.00 / year" not in r.text
    assert "Add storage to Nextcloud" in r.text
    assert input_tag(r.text, "addons", "storage-100")
    assert input_tag(r.text, "addons", "bitwarden") is None
    assert_accessible(r.text)


def test_storage_step_stores_the_combined_list(shop, db):
    c = shop.client()
    step1(c)
    assert choose_plan(c, "nextcloud", "annual", ["bitwarden"]).status_code == 303
    r = choose_storage(c, ["storage-100"])
    assert r.status_code == 303, r.text[:500]
    assert r.headers["Location"] == CHECKOUT
    st = onboarding_state(db, c)
    assert st["storage_addons"] == ["storage-100"]
    assert st["addons"] == ["bitwarden", "storage-100"]
    assert st["general_addons"] == ["bitwarden"]
    # Shown as chosen when coming back.
    assert "checked" in input_tag(c.get(ADDONS).text, "addons", "storage-100")
    # Continuing without storage clears it.
    assert choose_storage(c, []).status_code == 303
    st = onboarding_state(db, c)
    assert st["storage_addons"] == [] and st["addons"] == ["bitwarden"]


def test_storage_step_is_skipped_without_storage(shop, db):
    c = shop.client()
    step1(c)
    assert choose_plan(c, "essentials", "monthly", ["immich"]).status_code == 303
    r = c.get(ADDONS)
    assert r.status_code == 303 and r.headers["Location"] == CHECKOUT
    r = choose_storage(c, ["storage-100"])
    assert r.status_code == 303 and r.headers["Location"] == CHECKOUT
    st = onboarding_state(db, c)
    assert st["addons"] == ["immich"] and st["storage_addons"] == []


def test_choosing_another_plan_drops_old_storage(shop, db):
    c = shop.client()
    step1(c)
    choose_plan(c, "nextcloud", "monthly")
    assert choose_storage(c, ["storage-100"]).status_code == 303
    assert choose_plan(c, "essentials", "monthly", ["bitwarden"]).status_code == 303
    st = onboarding_state(db, c)
    assert "storage_addons" not in st
    assert st["addons"] == ["bitwarden"]


BAD_STORAGE_POSTS = {
    "another plan's storage": ["essentials-drive"],
    "general add-on as storage": ["bitwarden"],
    "plan as storage": ["nextcloud"],
    "unknown": ["nope"],
    "duplicate": ["storage-100", "storage-100"],
    "general add-on repeated": ["storage-100", "immich"],
}


@pytest.mark.parametrize("case", sorted(BAD_STORAGE_POSTS))
def test_storage_tampering_is_refused(shop_with_other_storage, db, case):
    c = shop_with_other_storage.client()
    step1(c)
    assert choose_plan(c, "nextcloud", "monthly", ["immich"]).status_code == 303
    before = onboarding_state(db, c)
    r = choose_storage(c, BAD_STORAGE_POSTS[case])
    assert r.status_code == 400, (case, r.status_code, r.text[:300])
    assert alert_text(r.text), case
    assert onboarding_state(db, c) == before
    assert_accessible(r.text)


def test_other_plans_storage_is_listed_only_there(shop_with_other_storage):
    c = shop_with_other_storage.client()
    step1(c)
    choose_plan(c, "nextcloud", "monthly")
    page = c.get(ADDONS).text
    assert "Essentials Drive" not in page
    choose_plan(c, "essentials", "monthly")
    page = c.get(ADDONS).text
    assert "Essentials Drive" in page and "Extra Storage" not in page
    assert choose_storage(c, ["essentials-drive"]).status_code == 303


def test_coming_soon_or_inactive_storage_is_refused(shop, db):
    c = shop.client()
    step1(c)
    choose_plan(c, "nextcloud", "monthly")
    set_flag(db, "products", "is_coming_soon", True, "slug = ?", "storage-100")
    assert "disabled" in input_tag(c.get(ADDONS).text, "addons", "storage-100")
    assert choose_storage(c, ["storage-100"]).status_code == 400
    set_flag(db, "products", "is_active", False, "slug = ?", "storage-100")
    # No active storage left: the step is skipped.
    r = c.get(ADDONS)
    assert r.status_code == 303 and r.headers["Location"] == CHECKOUT
