#!/usr/bin/env python3
"""bench/recovery_timing.py — POST /recovery/send-code/ latency by kind of account.

    recovery_timing.py BASE_URL REQUESTS

Interleaves REQUESTS requests for each kind (a recoverable account, an active one, an expired
one, an unknown name), each from a fresh browser session (GET /recovery/ for the cookie and
the CSRF token, not timed; then the timed POST), and prints each kind's median and p90 in ms,
its median's ratio to the unknown name's (the baseline measured in the same run) and the
largest gap between medians. Issue 11 asks for a gap under 5 ms. Exits non-zero when any
answer is not 200 or when the answers differ between kinds.
"""
import html
import re
import statistics
import sys
import time
import urllib.request

KINDS = {"recoverable": "gone", "active": "live", "expired": "old", "unknown": "nobody"}
CSRF_META = re.compile(r"<meta\b[^>]*\bname=[\"']csrf-token[\"'][^>]*>", re.IGNORECASE)
CONTENT_ATTR = re.compile(r"\bcontent=[\"']([^\"']*)[\"']", re.IGNORECASE)


def fresh_browser(base):
    with urllib.request.urlopen(base + "/recovery/", timeout=10) as r:
        page = r.read().decode()
        cookies = [v.split(";", 1)[0] for k, v in r.headers.items() if k.lower() == "set-cookie"]
    token = html.unescape(CONTENT_ATTR.search(CSRF_META.search(page).group(0)).group(1))
    return "; ".join(cookies), token


def send(base, cookie, token, identifier):
    body = ('{"identifier": "%s"}' % identifier).encode()
    req = urllib.request.Request(base + "/recovery/send-code/", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "X-CSRF-Token": token, "Cookie": cookie})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = (r.status, r.read())
    return time.perf_counter() - started, answer


def main():
    base, n = sys.argv[1], int(sys.argv[2])
    timings = {k: [] for k in KINDS}
    answers = set()
    for _ in range(n):
        for kind, identifier in KINDS.items():
            cookie, token = fresh_browser(base)
            seconds, answer = send(base, cookie, token, identifier)
            if answer[0] != 200:
                sys.exit(f"recovery_timing: {kind} answered {answer[0]}")
            answers.add(answer)
            timings[kind].append(seconds * 1000)
    if len(answers) != 1:
        sys.exit(f"recovery_timing: the answers differ between kinds: {answers}")
    medians = {k: statistics.median(v) for k, v in timings.items()}
    base_ms = medians["unknown"]
    for kind, values in timings.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"  {kind:<12} median {medians[kind]:7.3f} ms   p90 {p90:7.3f} ms   "
              f"ratio to unknown {medians[kind] / base_ms:5.3f}")
    gap = max(medians.values()) - min(medians.values())
    print(f"  largest gap between medians {gap:.3f} ms   (target < 5 ms)  "
          f"{'ok' if gap < 5 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
