"""The front door and the error pages (issue 18, item 8): a logged-out / offers Log in, Sign up
and the identity provider's "Forgot password?"; 404 and other error pages say what happened
and where to go; a refused login has a short heading."""

import re
import sys

import pytest
import requests

from conftest import REPO

sys.path.insert(0, str(REPO))
from devstack.doubles.pytest_plugin import keycloak_double  # noqa: E402,F401 - fixture
from test_oidc import Login, app, kc  # noqa: E402,F401 - fixtures reused

sqlite_only = pytest.mark.backend("sqlite")


def title(page):
    return re.search(r"<title>([^<]*)</title>", page).group(1)


def test_front_door_offers_login_signup_and_forgot_password(app, kc):
    r = app.client().get("/")
    assert r.status_code == 200
    page = r.text
    assert '<a class="button primary" href="/onboarding/">Sign up</a>' in page
    assert 'href="/oidc/authenticate/?next=/dashboard/">Log in</a>' in page
    forgot = re.search(r'<a href="([^"]+)">Forgot password\?</a>', page).group(1)
    forgot = forgot.replace("&amp;", "&")
    assert re.fullmatch(re.escape(f"{kc.url}/realms/{kc.realm}/login-actions/reset-credentials")
                        + r"\?client_id=[\w-]+", forgot), forgot
    # the identity provider's own reset form (the double behaves as Keycloak 26)
    form = requests.get(forgot, timeout=10)
    assert form.status_code == 200 and "Forgot Your Password?" in form.text


def test_front_door_sends_a_logged_in_user_to_the_dashboard(app):
    login = Login(app)
    assert login.run("alice").status_code == 303
    r = login.client.get("/")
    assert r.status_code == 303 and r.headers["Location"] == "/dashboard/"


@sqlite_only
def test_front_door_without_login_configured_has_no_forgot_link(usher):
    page = usher().client().get("/").text
    assert "Sign up" in page and "Forgot password" not in page


@sqlite_only
def test_404_says_what_happened_and_where_to_go(usher):
    r = usher({"SUPPORT_EMAIL": "help@example.test"}).client().get("/no/such/page/")
    assert r.status_code == 404
    page = r.text
    assert title(page).startswith("Page not found ·")
    assert "We can't find that page" in page
    assert 'href="/">Go to the start page</a>' in page
    assert 'href="/onboarding/">Sign up</a>' in page
    assert 'href="mailto:help@example.test"' in page and 'href="/recovery/"' in page
    assert "/oidc/authenticate/" not in page  # no login form for a missing page


@sqlite_only
def test_405_page_words_it(usher):
    r = usher().client().request("DELETE", "/onboarding/")
    assert r.status_code == 405
    assert "That doesn't work here" in r.text and title(r.text).startswith("Not possible here")


def test_refused_login_has_a_short_heading(app):
    login = Login(app)
    login.start()
    r = login.client.get("/oidc/callback/?state=forged&code=x")
    assert r.status_code == 400
    assert '<h1 id="error-title">Login failed</h1>' in r.text
    assert title(r.text).startswith("Login failed ·")
    assert re.search(r"<p>We couldn't log you in: [^<]+\. Please start the login again\.</p>",
                     r.text.replace("&#39;", "'"))
    assert 'href="/oidc/authenticate/?next=/dashboard/">Log in again</a>' in r.text
