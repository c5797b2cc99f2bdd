#!/usr/bin/env python3
"""bench/onboarding_session.py — a session that has completed onboarding step 1, for load.

    onboarding_session.py BASE_URL HTML_OUT

GET /onboarding/ (starts a session; the CSRF token is in <meta name="csrf-token">), POST the
first name with that token, then GET /onboarding/plan/ once and save the page to HTML_OUT
(nginx serves that copy as the baseline). Prints the Cookie header value for wrk: the session
cookie and the state cookie (the tag of the session's last write), as a browser sends them.
The cookies are taken from Set-Cookie by hand: they are __Host-/Secure cookies, which HTTP
clients will not send back over plain http on their own. Exits non-zero when any step answers
unexpectedly.
"""
import html
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

CSRF_META = re.compile(r"<meta\b[^>]*\bname=[\"']csrf-token[\"'][^>]*>", re.IGNORECASE)
CONTENT_ATTR = re.compile(r"\bcontent=[\"']([^\"']*)[\"']", re.IGNORECASE)
SESSION_COOKIES = ("__Host-usher_session", "usher_session", "__Host-usher_state", "usher_state")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fail(msg):
    print(f"onboarding_session: {msg}", file=sys.stderr)
    sys.exit(1)


def call(opener, url, cookie=None, data=None):
    headers = {"Cookie": cookie} if cookie else {}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        resp = opener.open(req, timeout=10)
    except urllib.error.HTTPError as e:  # 3xx (redirects are not followed) and 4xx/5xx
        resp = e
    return resp.status, resp.headers, resp.read().decode("utf-8", "replace")


def session_cookie(headers, jar):
    """The Cookie header after this answer: jar (name -> value) updated from its Set-Cookie."""
    for raw in headers.get_all("Set-Cookie") or []:
        name, _, rest = raw.partition("=")
        if name.strip() in SESSION_COOKIES:
            jar[name.strip()] = rest.split(";", 1)[0].strip()
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def main():
    if len(sys.argv) != 3:
        fail("usage: onboarding_session.py BASE_URL HTML_OUT")
    base, out = sys.argv[1].rstrip("/"), sys.argv[2]
    opener = urllib.request.build_opener(NoRedirect)

    status, headers, page = call(opener, base + "/onboarding/")
    if status != 200:
        fail(f"GET /onboarding/ answered {status}")
    jar = {}
    cookie = session_cookie(headers, jar)
    meta = CSRF_META.search(page)
    token = CONTENT_ATTR.search(meta.group(0)) if meta else None
    if not cookie or not token:
        fail("GET /onboarding/ gave no session cookie or no csrf-token")

    form = urllib.parse.urlencode(
        {"csrf_token": html.unescape(token.group(1)), "first_name": "Bench"}
    ).encode()
    status, headers, _ = call(opener, base + "/onboarding/", cookie, form)
    location = headers.get("Location", "")
    if status not in (302, 303) or not location.endswith("/onboarding/plan/"):
        fail(f"POST /onboarding/ answered {status} (Location {location!r}), not the plan step")
    cookie = session_cookie(headers, jar)

    status, _, page = call(opener, base + "/onboarding/plan/", cookie)
    if status != 200 or "Bench" not in page:
        fail(f"GET /onboarding/plan/ answered {status}, not the plan page of this session")
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)
    print(cookie)


if __name__ == "__main__":
    main()
