"""A stateful local double of the Mailgun HTTP API, with an inbox page.

API (HTTP Basic `api:<key>`): `POST /v3/{domain}/messages` (multipart/form-data or
urlencoded: from, to, cc, bcc, subject, text, html, o:*, h:*, v:*) → 200
`{"id":"<…@domain>","message":"Queued. Thank you."}`; mailing-list members
(`POST /v3/lists/{list}/members` with address, name, subscribed, upsert, vars; GET/DELETE
one member; GET the members). Fault injection answers 429/5xx to the next N requests.

Inbox: `GET /inbox` (newest first) and `GET /inbox/{n}` so a person running `make run` can
read their verification code. Tests use `GET /_control/messages` (JSON).

Run: python3 -m devstack.doubles.mailgun_double --port 8025 --api-key key-devstack
"""

import base64
import copy
import hmac
import json
import re
import secrets
import sys
import threading
import time

if __package__ in (None, ""):  # run as a script: make the package importable
    import pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    __package__ = "devstack.doubles"

from ._http import (App, DoubleServer, ServedDouble, run_standalone,  # noqa: E402
                    Response, esc, html_response,
                    json_response, page)

CODE_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


def _split_addresses(values):
    out = []
    for v in values:
        out.extend(a.strip() for a in v.split(",") if a.strip())
    return out


def _bare(address):
    m = re.search(r"<([^<>]+)>", address)
    return (m.group(1) if m else address).strip().lower()


class MailgunState:
    def __init__(self):
        self.messages = []    # oldest first
        self.lists = {}       # address -> {address, members: {addr: member}}
        self.faults = []      # [{status, count, path}]
        self.requests = []    # method, path, status


class MailgunDouble(ServedDouble):
    def __init__(self, port=0, api_key="key-devstack", domains=None, lists=(),
                 auto_create_lists=True, verbose=False):
        self.lock = threading.RLock()
        self.state = MailgunState()
        self.config = {
            "api_key": api_key,            # None: any key is accepted (user must be "api")
            "domains": list(domains or []),  # empty: any domain is accepted
            "auto_create_lists": bool(auto_create_lists),
        }
        self._initial_lists = list(lists)
        for a in lists:
            self.add_list(a)
        self.app = App("mailgun")
        self._routes()
        self.server = DoubleServer(self.app, port=port, verbose=verbose)

    def reset(self):
        with self.lock:
            self.state = MailgunState()
            for a in self._initial_lists:
                self.add_list(a)

    def add_list(self, address):
        with self.lock:
            address = address.lower()
            return self.state.lists.setdefault(address, {"address": address, "members": {}})

    # --- storing messages ----------------------------------------------------------------

    def store_message(self, domain, pairs, source="api"):
        """Stores a message from form pairs; returns the record."""
        fields = {}
        for k, v in pairs:
            fields.setdefault(k, []).append(v)

        def first(name):
            return (fields.get(name) or [None])[0]

        with self.lock:
            n = len(self.state.messages) + 1
            mid = f"<{time.strftime('%Y%m%d%H%M%S', time.gmtime())}.{n}." \
                  f"{secrets.token_hex(6).upper()}@{domain}>"
            rec = {
                "n": n, "id": mid, "domain": domain, "source": source,
                "from": first("from"), "to": _split_addresses(fields.get("to", [])),
                "cc": _split_addresses(fields.get("cc", [])),
                "bcc": _split_addresses(fields.get("bcc", [])),
                "subject": first("subject") or "", "text": first("text"),
                "html": first("html"), "template": first("template"),
                "tags": fields.get("o:tag", []),
                "options": {k[2:]: (v if len(v) > 1 else v[0]) for k, v in fields.items()
                            if k.startswith("o:") and k != "o:tag"},
                "headers": {k[2:]: v[0] for k, v in fields.items() if k.startswith("h:")},
                "variables": {k[2:]: v[0] for k, v in fields.items() if k.startswith("v:")},
                "received_at": time.time(),
            }
            self.state.messages.append(rec)
            return rec

    def inject(self, to, subject, text=None, html=None, sender="no-reply@devstack.invalid",
               source="inject"):
        """Puts a message in the inbox without the API (e.g. Keycloak's emails)."""
        pairs = [("from", sender), ("to", to), ("subject", subject)]
        if text is not None:
            pairs.append(("text", text))
        if html is not None:
            pairs.append(("html", html))
        return self.store_message(sender.split("@")[-1].rstrip(">"), pairs, source=source)

    # --- routing -------------------------------------------------------------------------

    def _routes(self):
        a = self.app
        api = self._api
        a.route("POST", "/v3/{domain}/messages", api(self.h_send))
        a.route("POST", "/v3/lists/{list}/members", api(self.h_member_add))
        a.route("GET", "/v3/lists/{list}/members", api(self.h_members))
        a.route("GET", "/v3/lists/{list}/members/pages", api(self.h_members))
        a.route("GET", "/v3/lists/{list}/members/{member}", api(self.h_member_get))
        a.route("DELETE", "/v3/lists/{list}/members/{member}", api(self.h_member_del))
        a.route("GET", "/v3/lists/{list}", api(self.h_list_get))
        a.route("GET", "/inbox", self.p_inbox)
        a.route("GET", "/", self.p_inbox)
        a.route("GET", "/inbox/{n}", self.p_message)
        a.route("GET", "/inbox/{n}/html", self.p_message_html)
        c = self._control
        a.route("GET", "/_control/messages", c(self.c_messages))
        a.route("POST", "/_control/messages", c(self.c_inject))
        a.route("GET", "/_control/messages/latest", c(self.c_latest))
        a.route("GET", "/_control/lists", c(lambda req, b: self._lists_json()))
        a.route("POST", "/_control/lists", c(lambda req, b: self._list_json(
            self.add_list(b["address"]))))
        a.route("POST", "/_control/faults", c(self.c_faults))
        a.route("GET", "/_control/requests", c(lambda req, b: self.state.requests))
        a.route("GET", "/_control/config", c(lambda req, b: self.config))
        a.route("POST", "/_control/config", c(self.c_config))
        a.route("POST", "/_control/reset", c(lambda req, b: (self.reset(), {"reset": True})[1]))

    def _api(self, fn):
        def wrapper(req):
            resp = self._api_inner(fn, req)
            with self.lock:
                self.state.requests.append({"method": req.method, "path": req.path,
                                            "status": resp.status, "at": time.time()})
            return resp
        return wrapper

    def _api_inner(self, fn, req):
        auth = req.header("Authorization") or ""
        ok = False
        if auth.startswith("Basic "):
            try:
                user, key = base64.b64decode(auth[6:], validate=True).decode().split(":", 1)
                expected = self.config["api_key"]
                ok = user == "api" and (expected is None or
                                        hmac.compare_digest(key.encode(), expected.encode()))
            except (ValueError, UnicodeDecodeError):
                ok = False
        if not ok:
            r = Response(401, b"Forbidden", "text/plain; charset=utf-8")
            r.add_header("WWW-Authenticate", 'Basic realm="MG API"')
            return r
        fault = self._take_fault(req)
        if fault:
            if fault["status"] == 429:
                r = json_response(429, {"message": "Too many requests"})
                r.add_header("Retry-After", str(fault.get("retry_after", 1)))
                return r
            return json_response(fault["status"], {"message": "Internal Server Error"})
        try:
            pairs = req.form_pairs()
        except ValueError:
            return json_response(400, {"message": "Invalid form data"})
        if pairs is None:
            pairs = []
            if req.method == "POST":
                return json_response(400, {"message": "Unsupported Content-Type; use "
                                                      "multipart/form-data or "
                                                      "application/x-www-form-urlencoded"})
        with self.lock:
            return fn(req, pairs)

    def _take_fault(self, req):
        with self.lock:
            for f in self.state.faults:
                if f["count"] == 0:
                    continue
                if f.get("path") and not req.path.startswith(f["path"]):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                return f
        return None

    # --- API handlers --------------------------------------------------------------------

    def h_send(self, req, pairs):
        domain = req.params["domain"]
        if self.config["domains"] and domain not in self.config["domains"]:
            return json_response(404, {"message": f"Domain not found: {domain}"})
        names = {k for k, v in pairs if v != ""}
        if "from" not in names:
            return json_response(400, {"message": "'from' parameter is missing"})
        if "to" not in names:
            return json_response(400, {"message": "'to' parameter is missing"})
        if not names & {"text", "html", "template", "amp-html"}:
            return json_response(400, {"message": "Need at least one of 'text', 'html' or "
                                                  "'template' parameters specified"})
        rec = self.store_message(domain, pairs)
        return json_response(200, {"id": rec["id"], "message": "Queued. Thank you."})

    def _list_or_404(self, address):
        address = address.lower()
        lst = self.state.lists.get(address)
        if lst is None and self.config["auto_create_lists"]:
            lst = self.add_list(address)
        return lst

    @staticmethod
    def _yes(v, default):
        if v is None or v == "":
            return default
        return str(v).lower() in ("yes", "true", "1")

    def h_member_add(self, req, pairs):
        f = {}
        for k, v in pairs:
            f.setdefault(k, v)
        lst = self._list_or_404(req.params["list"])
        if lst is None:
            return json_response(404, {"message": f"Mailing list {req.params['list']} "
                                                  "not found"})
        address = (f.get("address") or "").strip()
        if not address:
            return json_response(400, {"message": "Parameter 'address' is missing"})
        key = _bare(address)
        if "@" not in key:
            return json_response(400, {"message": f"'{address}' is not a valid address"})
        upsert = self._yes(f.get("upsert"), False)
        existing = lst["members"].get(key)
        if existing and not upsert:
            return json_response(400, {"message": f"Address already exists '{key}'"})
        try:
            vars_ = json.loads(f["vars"]) if f.get("vars") else (existing or {}).get("vars",
                                                                                     {})
        except ValueError:
            return json_response(400, {"message": "Invalid vars: must be valid JSON"})
        member = {"address": key,
                  "name": f.get("name", (existing or {}).get("name", "")),
                  "subscribed": self._yes(f.get("subscribed"),
                                          (existing or {}).get("subscribed", True)),
                  "vars": vars_}
        lst["members"][key] = member
        msg = "Mailing list member has been updated" if existing else \
            "Mailing list member has been created"
        return json_response(200, {"member": member, "message": msg})

    def h_member_get(self, req, pairs):
        lst = self.state.lists.get(req.params["list"].lower())
        if lst is None:
            return json_response(404, {"message": f"Mailing list {req.params['list']} "
                                                  "not found"})
        m = lst["members"].get(req.params["member"].lower())
        if m is None:
            return json_response(404, {"message": "Member "
                                                  f"{req.params['member']} not found"})
        return json_response(200, {"member": m})

    def h_member_del(self, req, pairs):
        lst = self.state.lists.get(req.params["list"].lower())
        m = lst and lst["members"].pop(req.params["member"].lower(), None)
        if not m:
            return json_response(404, {"message": "Member "
                                                  f"{req.params['member']} not found"})
        return json_response(200, {"member": {"address": m["address"]},
                                   "message": "Mailing list member has been deleted"})

    def h_members(self, req, pairs):
        lst = self.state.lists.get(req.params["list"].lower())
        if lst is None:
            return json_response(404, {"message": f"Mailing list {req.params['list']} "
                                                  "not found"})
        return json_response(200, {"items": list(lst["members"].values()),
                                   "total_count": len(lst["members"])})

    def h_list_get(self, req, pairs):
        lst = self.state.lists.get(req.params["list"].lower())
        if lst is None:
            return json_response(404, {"message": f"Mailing list {req.params['list']} "
                                                  "not found"})
        return json_response(200, {"list": {"address": lst["address"],
                                            "members_count": len(lst["members"]),
                                            "access_level": "readonly", "name": ""}})

    # --- inbox pages ---------------------------------------------------------------------

    def p_inbox(self, req):
        with self.lock:
            msgs = list(reversed(self.state.messages))
        rows = []
        for m in msgs:
            code = CODE_RE.search(m["text"] or "") or CODE_RE.search(m["subject"] or "")
            rows.append(
                f"<tr><td>{time.strftime('%H:%M:%S', time.localtime(m['received_at']))}</td>"
                f"<td>{esc(', '.join(m['to']))}</td>"
                f"<td><a href='/inbox/{m['n']}'>{esc(m['subject'] or '(no subject)')}</a></td>"
                f"<td class='code'>{esc(code.group(1)) if code else ''}</td></tr>")
        body = f"""<h1>Inbox <small class="note">(Mailgun double)</small></h1>
<p class="note">Every email Usher sent through the Mailgun API, newest first.
<a href="/inbox">Refresh</a></p>
<table><tr><th>Time</th><th>To</th><th>Subject</th><th>Code</th></tr>{''.join(rows)}</table>
{'' if rows else '<p>No messages yet.</p>'}"""
        return html_response(200, page("Inbox", body))

    def _get(self, n):
        with self.lock:
            try:
                i = int(n)
            except ValueError:
                return None
            return copy.deepcopy(self.state.messages[i - 1]) \
                if 1 <= i <= len(self.state.messages) else None

    def p_message(self, req):
        m = self._get(req.params["n"])
        if m is None:
            return html_response(404, page("Not found", "<h1>No such message</h1>"))
        extra = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in
                        [("Tags", ", ".join(m["tags"]))] + list(m["headers"].items()))
        html_part = ""
        if m["html"]:
            html_part = (f"<h2>HTML</h2><iframe sandbox='' style='width:100%;height:30rem;"
                         f"border:1px solid #ddd' srcdoc='{esc(m['html'])}'></iframe>"
                         f"<p><a href='/inbox/{m['n']}/html'>open HTML alone</a></p>")
        body = f"""<p><a href="/inbox">← Inbox</a></p>
<h1>{esc(m['subject'] or '(no subject)')}</h1>
<table><tr><th>From</th><td>{esc(m['from'])}</td></tr>
<tr><th>To</th><td>{esc(', '.join(m['to']))}</td></tr>
<tr><th>Message-Id</th><td>{esc(m['id'])}</td></tr>{extra}</table>
<h2>Text</h2><pre id="text">{esc(m['text'] or '')}</pre>
{html_part}"""
        return html_response(200, page(m["subject"] or "Message", body))

    def p_message_html(self, req):
        m = self._get(req.params["n"])
        if m is None or not m["html"]:
            return html_response(404, page("Not found", "<h1>No HTML part</h1>"))
        r = html_response(200, m["html"])
        r.add_header("Content-Security-Policy", "sandbox")
        return r

    # --- control API ---------------------------------------------------------------------

    def _control(self, fn):
        def wrapper(req):
            body = {}
            if req.method == "POST" and req.body:
                try:
                    body = req.json()
                except ValueError:
                    return json_response(400, {"error": "body must be JSON"})
            try:
                with self.lock:
                    return json_response(200, copy.deepcopy(fn(req, body)))
            except (KeyError, TypeError, ValueError) as e:
                return json_response(400, {"error": f"bad control request: {e!r}"})
        return wrapper

    def messages(self, to=None, tag=None):
        """Messages oldest first, optionally only those to an address / with a tag."""
        with self.lock:
            out = []
            for m in self.state.messages:
                if to and _bare(to) not in [_bare(a) for a in m["to"] + m["cc"] + m["bcc"]]:
                    continue
                if tag and tag not in m["tags"]:
                    continue
                out.append(copy.deepcopy(m))
            return out

    def latest_code(self, to):
        """The 6-digit code in the newest message to `to` (None if there is none)."""
        for m in reversed(self.messages(to=to)):
            c = CODE_RE.search(m["text"] or "") or CODE_RE.search(m["html"] or "")
            if c:
                return c.group(1)
        return None

    def c_messages(self, req, body):
        return self.messages(to=req.arg("to"), tag=req.arg("tag"))

    def c_latest(self, req, body):
        msgs = self.messages(to=req.arg("to"), tag=req.arg("tag"))
        if not msgs:
            return {"message": None, "code": None}
        m = msgs[-1]
        c = CODE_RE.search(m["text"] or "") or CODE_RE.search(m["html"] or "")
        return {"message": m, "code": c.group(1) if c else None}

    def c_inject(self, req, body):
        return self.inject(body["to"], body.get("subject", ""), body.get("text"),
                           body.get("html"), body.get("from", "no-reply@devstack.invalid"))

    def c_faults(self, req, body):
        """{status: 429|500|…, count: n (-1 = until cleared), path?} or {"clear": true}"""
        if body.get("clear"):
            self.state.faults = []
        else:
            self.state.faults.append({"status": int(body.get("status", 500)),
                                      "count": int(body.get("count", 1)),
                                      "path": body.get("path"),
                                      "retry_after": body.get("retry_after", 1)})
        return {"faults": self.state.faults}

    def fault(self, status, count=1, path=None):
        with self.lock:
            self.state.faults.append({"status": status, "count": count, "path": path,
                                      "retry_after": 1})

    def c_config(self, req, body):
        unknown = set(body) - set(self.config)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        self.config.update(body)
        return self.config

    def _list_json(self, lst):
        return {"address": lst["address"], "members": list(lst["members"].values())}

    def _lists_json(self):
        return [self._list_json(lst) for lst in self.state.lists.values()]

    def list_members(self, address):
        with self.lock:
            lst = self.state.lists.get(address.lower())
            return copy.deepcopy(list(lst["members"].values())) if lst else []


def start_mailgun(port=0, **kw):
    """Starts a Mailgun double on 127.0.0.1:port (0 = a free port) in a background thread."""
    return MailgunDouble(port=port, **kw).start()


def add_arguments(ap, prefix=""):
    ap.add_argument(f"--{prefix}api-key", default="key-devstack",
                    help="the API key (HTTP Basic password of user 'api')")
    ap.add_argument(f"--{prefix}domain", action="append", default=[],
                    help="accepted sending domain (repeatable; default: any)")
    ap.add_argument(f"--{prefix}list", action="append", default=[],
                    help="mailing list address to create (repeatable)")
    ap.add_argument(f"--{prefix}strict-lists", action="store_true",
                    help="unknown mailing lists give 404 (default: created on first use)")


def from_args(args, port, prefix="", verbose=False):
    g = lambda name: getattr(args, prefix.replace("-", "_") + name)  # noqa: E731
    return MailgunDouble(port=port, api_key=g("api_key"), domains=g("domain"),
                         lists=g("list"), auto_create_lists=not g("strict_lists"),
                         verbose=verbose)


def main(argv=None):
    run_standalone("Mailgun", 8025, add_arguments, from_args,
                   lambda d: f"mailgun double on {d.url} (inbox {d.url}/inbox)", argv)


if __name__ == "__main__":
    main()
