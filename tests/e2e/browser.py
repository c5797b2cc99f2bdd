"""The browser half of the e2e fixtures, importable by any suite that drives Chromium:
tests/e2e/conftest.py re-exports it, and tests/conformance/test_browser_login.py imports it to
run the login journey against the real Keycloak.

  browser  one Chromium per session: /usr/bin/chromium (apt package `chromium`), never a
           browser that Playwright downloads; missing → every test FAILS saying so
  page     a fresh browser context (no cookies) and page per test; when the test failed, a
           screenshot and the HTML of every open tab are saved next to its steps (this needs
           the suite's conftest to record reports as item.rep_<when>)
  shot     shot("step") saves a full-page PNG as test-artifacts/e2e/<test>/NN-step.png

Importers load this file by path (see load() in the importers) under the one module name
MODULE_NAME, so that a pytest run that collects both suites shares one module.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

MODULE_NAME = "usher_e2e_browser"

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("USHER_E2E_ARTIFACTS") or REPO / "test-artifacts" / "e2e")
CHROMIUM = os.environ.get("USHER_E2E_CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Generous for the ASan build; a healthy step takes well under a second.
STEP_TIMEOUT_MS = 20_000


@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Debian's Chromium is not installed at {CHROMIUM}: run scripts/bootstrap "
                    "(apt package `chromium`). The e2e suite never uses Playwright's own "
                    "browser downloads.", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"Playwright is missing from the venv ({e}): run scripts/bootstrap",
                    pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _artifact_dir(request):
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    return ARTIFACTS / name


class Shots:
    """Numbered full-page screenshots of one test, in its own directory (emptied first, so
    what is there after a run is that run's)."""

    def __init__(self, directory):
        self.dir = directory
        self.n = 0
        self.page = None
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def __call__(self, step, page=None):
        self.n += 1
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", step).strip("-")
        path = self.dir / f"{self.n:02d}-{slug}.png"
        (page or self.page).screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request):
    return Shots(_artifact_dir(request))


@pytest.fixture
def page(request, browser, shots):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(STEP_TIMEOUT_MS)
    pg = context.new_page()
    shots.page = pg
    try:
        yield pg
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            # What the browser showed when the test gave up, next to the steps before it.
            for i, open_page in enumerate(context.pages):
                try:
                    shots(f"failed-tab{i + 1}", page=open_page)
                    (shots.dir / f"failed-tab{i + 1}.html").write_text(open_page.content())
                    print(f"--- browser tab {i + 1} at failure: {open_page.url}")
                except Exception as e:  # a crashed page must not hide the test's own error
                    print(f"--- browser tab {i + 1}: no screenshot ({e})")
        context.close()


@pytest.fixture
def shot(shots, page):
    """shot("step") saves test-artifacts/e2e/<test>/NN-step.png of the current page."""
    return shots


def wait_for_text(page, text, timeout_ms=STEP_TIMEOUT_MS):
    page.get_by_text(text).first.wait_for(state="visible", timeout=timeout_ms)
