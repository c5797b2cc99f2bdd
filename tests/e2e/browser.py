"""The browser half of the e2e fixtures, importable by any suite that drives Chromium:
tests/e2e/conftest.py re-exports it, and tests/conformance/test_browser_login.py imports it to
run the login journey against the real Keycloak.

  browser  one Chromium per session: /usr/bin/chromium (apt package `chromium`), never a
           browser that Playwright downloads; missing → every test FAILS saying so
  page     a fresh browser context (no cookies) and page per test; when the test failed, a
           screenshot and the HTML of every open tab are saved next to its steps (this needs
           the suite's conftest to record reports as item.rep_<when>)
  shot     shot("step") saves a full-page PNG as test-artifacts/e2e/<test>/NN-step.png and,
           on Usher's own pages, runs axe_check on that state
  axe_check(page, name)  axe-core (tests/e2e/vendor/, pinned) at 1280 and 390 px wide: WCAG 2.2
           A/AA + best practices, and body text contrast of at least 7:1; results next to
           the screenshots; any violation fails the test

Importers load this file by path (see load() in the importers) under the one module name
MODULE_NAME, so that a pytest run that collects both suites shares one module.
"""

import json
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

AXE_JS = Path(__file__).with_name("vendor") / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
AXE_WIDTHS = (1280, 390)  # desktop and phone
BODY_TEXT_CONTRAST = 7.0  # WCAG AAA for body text
# Base URLs of the Usher servers under test (the stack and demo fixtures register theirs).
# Only pages under them are checked: the doubles (Stripe checkout, Keycloak login, the
# Mailgun inbox) run on other ports and are not Usher's to fix.
USHER_SITES = []

# Runs axe on the document, returns the violations in a compact, JSON-able shape.
_AXE_RUN = """async (tags) => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                     resultTypes: ['violations']});
  return {version: axe.version, violations: r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, tags: v.tags,
    nodes: v.nodes.map(n => ({target: n.target, html: n.html.slice(0, 300),
                              summary: n.failureSummary}))}))};
}"""

# The text colour of <body> and of every visible <p> against the background it is drawn
# on (the first opaque background-color up the tree), as WCAG contrast ratios.
_BODY_CONTRAST = r"""(minimum) => {
  function rgb(s) {
    const m = s.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const v = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return {r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1};
  }
  function lum(c) {
    const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  function background(el) {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c.a >= 0.99) return c;
    }
    const root = rgb(getComputedStyle(document.documentElement).backgroundColor);
    return root && root.a >= 0.99 ? root : {r: 255, g: 255, b: 255, a: 1};
  }
  const out = [];
  const els = [document.body].concat(Array.from(document.querySelectorAll('p')));
  for (const el of els) {
    if (el !== document.body && (!el.offsetParent || !el.textContent.trim())) continue;
    const fg = rgb(getComputedStyle(el).color), bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < minimum) out.push({element: el === document.body ? 'body' :
        (el.id ? 'p#' + el.id : 'p' + (el.className ? '.' + el.className.split(' ').join('.') : '')),
        text: el.textContent.trim().slice(0, 60), color: getComputedStyle(el).color,
        background: 'rgb(' + bg.r + ', ' + bg.g + ', ' + bg.b + ')',
        ratio: Math.round(ratio * 100) / 100});
  }
  return out;
}"""


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
        pg = page or self.page
        pg.screenshot(path=str(path), full_page=True)
        if not step.startswith("failed") and is_usher_page(pg):
            axe_check(pg, f"{self.n:02d}-{slug}", self.dir)
        return path


def is_usher_page(page):
    return any(page.url.startswith(site.rstrip("/") + "/") for site in USHER_SITES)


def _inject_axe(page):
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    try:
        page.add_script_tag(path=str(AXE_JS))
    except Exception:
        pass
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Usher's Content-Security-Policy refuses the injected <script>; the DevTools
        # protocol's evaluate is not subject to it.
        page.evaluate(AXE_JS.read_text() + "\n;undefined")


def axe_check(page, name, directory=None):
    """Runs axe-core on the page's current state at each width in AXE_WIDTHS (then restores
    the viewport), and checks that <body> and visible <p> text reach 7:1. Writes
    <name>.axe.json next to the screenshots; fails on any violation."""
    directory = Path(directory or ARTIFACTS)
    directory.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size or {"width": 1280, "height": 900}
    report = {"url": page.url, "axe_tags": AXE_TAGS, "widths": {}}
    failures = []
    try:
        for width in AXE_WIDTHS:
            if width != original["width"]:
                page.set_viewport_size({"width": width, "height": original["height"]})
            _inject_axe(page)
            result = page.evaluate(_AXE_RUN, AXE_TAGS)
            contrast = page.evaluate(_BODY_CONTRAST, BODY_TEXT_CONTRAST)
            report["axe_version"] = result["version"]
            report["widths"][width] = {"violations": result["violations"],
                                       "body_text_contrast_below_7": contrast}
            for v in result["violations"]:
                targets = ", ".join(" ".join(n["target"]) for n in v["nodes"][:4])
                failures.append(f"{width}px {v['id']} ({v['impact']}): {v['help']} — {targets}")
            for c in contrast:
                failures.append(f"{width}px body text contrast {c['ratio']} < 7 on "
                                f"{c['element']} ({c['color']} on {c['background']})")
    finally:
        if page.viewport_size != original:
            page.set_viewport_size(original)
    (directory / f"{name}.axe.json").write_text(json.dumps(report, indent=1))
    assert not failures, f"accessibility of {page.url} ({name}):\n  " + "\n  ".join(failures)


@pytest.fixture
def shots(request):
    return Shots(_artifact_dir(request))


@pytest.fixture
def page(request, browser, shots):
    # Indirect parametrization adds context options, e.g. {"color_scheme": "dark"}.
    options = {"viewport": {"width": 1280, "height": 900}, "locale": "en-US",
               **getattr(request, "param", {})}
    context = browser.new_context(**options)
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
