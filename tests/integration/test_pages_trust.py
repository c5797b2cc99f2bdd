"""Trust and clarity (issue 18, item 4): TERMS_URL and PRIVACY_URL in every page's footer and
page context, and on the payment step the renewal note (charged today, renews on, cancel any
time), the consent line and "Already have an account? Log in"."""

import calendar
import datetime
import re

import pytest

from test_onboarding_checkout import (  # noqa: F401 - fixtures
    CHECKOUT, doubles, keycloak_double, mailgun_double, ordered, shop, stripe_double,
    webhook_receiver)
from test_config import assert_config_error

sqlite_only = pytest.mark.backend("sqlite")
TERMS = "https://example.test/terms"
PRIVACY = "https://example.test/privacy"


def footer(page):
    m = re.search(r'<footer class="site-footer">(.*?)</footer>', page, re.S)
    assert m, "no footer"
    return m.group(1)


@sqlite_only
def test_footer_links_terms_and_privacy_when_configured(usher):
    s = usher({"TERMS_URL": TERMS, "PRIVACY_URL": PRIVACY, "SUPPORT_EMAIL": "help@example.test"})
    c = s.client()
    for path in ("/onboarding/", "/recovery/", "/onboarding/waitlist/", "/logout/", "/nope/"):
        f = footer(c.get(path).text)
        assert f'<a href="{TERMS}">Terms</a>' in f, path
        assert f'<a href="{PRIVACY}">Privacy policy</a>' in f, path
        assert 'href="mailto:help@example.test"' in f, path


@sqlite_only
def test_footer_has_no_links_when_not_configured(usher):
    f = footer(usher().client().get("/onboarding/").text)
    assert "Terms" not in f and "Privacy" not in f and "mailto:" not in f


@sqlite_only
@pytest.mark.parametrize("name", ["TERMS_URL", "PRIVACY_URL"])
def test_malformed_policy_url_stops_serve(run_usher, name):
    for url in ("javascript:alert(1)", "example.test/terms", "https://", "ftp://x/terms"):
        assert_config_error(run_usher(["serve"], env={name: url}, timeout=10), name)


def add_months(day, months):
    y, m = divmod(day.month - 1 + months, 12)
    y += day.year
    last = calendar.monthrange(y, m + 1)[1]
    return day.replace(year=y, month=m + 1, day=min(day.day, last))


def long_date(day):
    return f"{day.day} {calendar.month_name[day.month]} {day.year}"


def aside(page):
    m = re.search(r'<aside class="order-summary".*?</aside>', page, re.S)
    assert m, "no order summary"
    return m.group(0)


def test_payment_step_renewal_note_monthly(shop):
    c = shop.client()
    ordered(c)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    a = aside(c.get(CHECKOUT).text)
    assert "Charged today: $16.00" in a
    assert f"renews on {long_date(add_months(today, 1))}" in a
    assert "once a month" in a
    assert "cancel any time" in a.lower()
    assert "By continuing you agree to the Terms and the Privacy policy." in a
    assert re.search(r'Already have an account\? <a href="/oidc/authenticate/[^"]*">Log in</a>', a)


def test_payment_step_renewal_note_annual(shop):
    c = shop.client()
    ordered(c, cycle="annual", addons=(), storage=())
    today = datetime.datetime.now(datetime.timezone.utc).date()
    a = aside(c.get(CHECKOUT).text)
    assert "Charged today: $100.00" in a
    assert f"renews on {long_date(add_months(today, 12))}" in a
    assert "once a year" in a


@sqlite_only
def test_consent_links_the_policies_when_configured(usher, run_usher, doubles):  # noqa: F811
    from test_onboarding_checkout import apply_catalog, doubles_env
    env = doubles_env(*doubles)
    env.update({"TERMS_URL": TERMS, "PRIVACY_URL": PRIVACY})
    s = usher(env)
    apply_catalog(run_usher)
    c = s.client()
    ordered(c)
    a = aside(c.get(CHECKOUT).text)
    assert (f'By continuing you agree to the <a href="{TERMS}">Terms</a> and the '
            f'<a href="{PRIVACY}">Privacy policy</a>.') in a


# --- the plan step (issue 18, item 5): featured plan preselected, annual figures, bottom bar --

def test_plan_step_preselects_the_featured_plan_and_explains_annual_prices(shop):
    c = shop.client()
    r = c.post_form("/onboarding/", {"first_name": "Grace"})
    assert r.status_code == 303
    page = c.get("/onboarding/plan/").text
    checked = re.findall(r'<input type="radio" id="plan-([\w-]+)" name="plan"[^>]* checked', page)
    assert checked == ["nextcloud"]  # devstack/catalog.json's featured plan
    # $100.00 a year = $8.33 a month, $20.00 less than twelve months at $10.00
    assert re.search(r'data-cycle="annual"[^>]*>\$100\.00 / year<span class="price-note">'
                     r'\$8\.33 a month, you save \$20\.00 a year</span>', page)
    assert 'data-amount="1000" data-currency="USD"' in page
    assert 'id="plan-total"' in page
    # an explicit choice wins over the featured plan
    fields = [("csrf_token", c.csrf()), ("plan", "essentials"), ("billing_cycle", "monthly")]
    assert c.post("/onboarding/plan/", data=fields).status_code == 303
    page = c.get("/onboarding/plan/").text
    checked = re.findall(r'<input type="radio" id="plan-([\w-]+)" name="plan"[^>]* checked', page)
    assert checked == ["essentials"]
