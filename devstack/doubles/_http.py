"""Shared HTTP plumbing for the devstack doubles (standard library only).

A double is an `App` (a route table plus a state object behind one lock) served by a
`DoubleServer`: a ThreadingHTTPServer on 127.0.0.1 in a background thread, speaking HTTP/1.1
(so libcurl's `Expect: 100-continue` is answered at once), which can be taken down and
brought back up on the same port (`down()`/`up()`) to simulate an outage: while down, the
listening socket is closed and every open keep-alive connection is shut, so clients see
"connection refused" / a reset, exactly as with a stopped server.

Also here: the request/response types, form decoding (flat, Stripe-style nested, multipart),
and small HTML helpers.
"""

import email.parser
import email.policy
import html
import json
import re
import secrets
import socket
import string
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

MAX_BODY = 10 * 1024 * 1024


# --- requests and responses ----------------------------------------------------------------

class Request:
    """One HTTP request as the route handlers see it."""

    def __init__(self, method, target, headers, body, client):
        self.method = method
        parts = urlsplit(target)
        self.path = parts.path or "/"
        self.query_string = parts.query
        self.query_pairs = parse_qsl(parts.query, keep_blank_values=True)
        self.headers = headers  # email.message.Message: case-insensitive .get()
        self.body = body
        self.client = client
        self.params = {}  # filled by the router from the path pattern

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def arg(self, name, default=None):
        """First query parameter `name`."""
        for k, v in self.query_pairs:
            if k == name:
                return v
        return default

    def args(self, name):
        return [v for k, v in self.query_pairs if k == name]

    @property
    def content_type(self):
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def form_pairs(self):
        """Body fields as (name, value) pairs: urlencoded or multipart/form-data."""
        ct = self.content_type
        if ct == "multipart/form-data":
            return parse_multipart(self.header("Content-Type"), self.body)
        if ct in ("", "application/x-www-form-urlencoded"):
            return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return None

    def form(self):
        """Body fields as a dict of first values (urlencoded or multipart)."""
        out = {}
        for k, v in self.form_pairs() or []:
            out.setdefault(k, v)
        return out

    def json(self):
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        if not self.body:
            raise ValueError("empty body")
        return json.loads(self.body.decode("utf-8"))

    def cookies(self):
        out = {}
        for part in (self.header("Cookie") or "").split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                out[k.strip()] = v.strip()
        return out


class Response:
    def __init__(self, status=200, body=b"", content_type="text/plain; charset=utf-8",
                 headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else str(body).encode("utf-8")
        self.headers = [("Content-Type", content_type)] if content_type else []
        for k, v in (headers or {}).items() if isinstance(headers, dict) else (headers or []):
            self.headers.append((k, v))

    def add_header(self, name, value):
        self.headers.append((name, value))
        return self

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def json_response(status, obj, headers=None):
    body = json.dumps(obj, indent=2, sort_keys=False).encode("utf-8")
    return Response(status, body, "application/json", headers)


def html_response(status, page, headers=None):
    return Response(status, page, "text/html; charset=utf-8", headers)


def redirect(location, status=302, headers=None):
    r = Response(status, b"", None, headers)
    r.add_header("Location", location)
    return r


def empty(status=204, headers=None):
    return Response(status, b"", None, headers)


# --- decoding ------------------------------------------------------------------------------

def parse_multipart(content_type_header, body):
    """multipart/form-data body → list of (name, value) pairs (files as their text)."""
    raw = b"Content-Type: " + content_type_header.encode("latin-1") + b"\r\n\r\n" + body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    if not msg.is_multipart():
        raise ValueError("malformed multipart body")
    out = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        out.append((name, payload.decode(charset, "replace")))
    return out


_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class FormError(ValueError):
    pass


def parse_nested(pairs):
    """Stripe-style nested form fields → nested dicts/lists.

    `a=1`, `a[b]=1`, `a[0][b]=1`, `a[]=x` (append), `a[0]=x`. A dict whose keys are all
    decimal indices becomes a list ordered by index.
    """
    root = {}
    for key, value in pairs:
        m = _KEY_RE.match(key)
        if not m:
            raise FormError(f"Invalid parameter name: {key}")
        path = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node = root
        for i, seg in enumerate(path):
            last = i == len(path) - 1
            if seg == "":
                # `[]`: append to a list kept under a synthetic increasing index
                idx = str(sum(1 for k in node if k.isdigit()))
                while idx in node:
                    idx = str(int(idx) + 1)
                seg = idx
            if last:
                node[seg] = value
            else:
                child = node.get(seg)
                if not isinstance(child, dict):
                    child = {}
                    node[seg] = child
                node = child
    return _listify(root)


def _listify(node):
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


# --- server --------------------------------------------------------------------------------

class App:
    """A route table. Handlers take a Request and return a Response."""

    def __init__(self, name):
        self.name = name
        self.routes = []
        self.before = None  # optional fn(req) -> Response|None, run before routing

    def route(self, method, pattern, fn):
        rx = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self.routes.append((method, rx, fn))

    def dispatch(self, req):
        if self.before:
            early = self.before(req)
            if early is not None:
                return early
        allowed = False
        for method, rx, fn in self.routes:
            m = rx.match(req.path)
            if not m:
                continue
            allowed = True
            if method != req.method and not (method == "GET" and req.method == "HEAD"):
                continue
            req.params = {k: unquote(v) for k, v in m.groupdict().items()}
            return fn(req)
        return self.not_found(req, allowed)

    def not_found(self, req, method_exists):
        if method_exists:
            return json_response(405, {"error": "Method not allowed"})
        return json_response(404, {"error": "Not found"})


def _make_handler(server_obj):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Keep-alive answers go out at once instead of waiting for the client's delayed ACK
        # (Nagle), which cost each reused-connection request about 40 ms.
        disable_nagle_algorithm = True
        server_version = server_obj.server_header
        sys_version = ""

        def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
            if server_obj.verbose:
                super().log_message(fmt, *args)

        def _read_body(self):
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                total = 0
                while True:
                    line = self.rfile.readline(65537)
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    total += size
                    if total > MAX_BODY:
                        raise ValueError("body too large")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(65537)
                return b"".join(chunks)
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                raise ValueError("body too large")
            return self.rfile.read(n) if n else b""

        def _handle(self):
            try:
                body = self._read_body()
            except (ValueError, OSError):
                self.send_error(400, "bad request body")
                return
            req = Request(self.command, self.path, self.headers, body, self.client_address)
            try:
                resp = server_obj.app.dispatch(req)
            except Exception as e:  # a bug in a double: say so, loudly, as a 500
                traceback.print_exc()
                resp = json_response(500, {"error": "double internal error", "detail": repr(e)})
            self.send_response(resp.status)
            for k, v in resp.headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # listen()'s backlog (socketserver's default is 5): with a few dozen clients connecting
    # at once, as in tests/cluster, a full accept queue reset connections.
    request_queue_size = 128

    def __init__(self, addr, handler, owner):
        self.owner = owner
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.owner._conn_lock:
            self.owner._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.owner._conn_lock:
            self.owner._conns.discard(request)
        super().shutdown_request(request)


class DoubleServer:
    """Serves an App on 127.0.0.1:port in a background thread."""

    server_header = "devstack-double"

    def __init__(self, app, port=0, host="127.0.0.1", verbose=False):
        self.app = app
        self.host = host
        self.port = port
        self.verbose = verbose
        self._httpd = None
        self._thread = None
        self._conns = set()
        self._conn_lock = threading.Lock()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def running(self):
        return self._httpd is not None

    def start(self):
        if self._httpd is not None:
            return self
        last = None
        for _ in range(50):  # the port may linger for a moment after down()
            try:
                self._httpd = _Server((self.host, self.port), _make_handler(self), self)
                break
            except OSError as e:
                last = e
                if self.port == 0:
                    raise
                time.sleep(0.1)
        else:
            raise last
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"{self.app.name}-double", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Closes the listener and every open connection (the port refuses connections)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._conn_lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    down = stop

    def up(self):
        return self.start()


# --- small helpers -------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits


class ServedDouble:
    """The lifecycle every double shares; the subclass sets self.server (a DoubleServer)."""

    def start(self):
        self.server.start()
        return self

    def stop(self):
        self.server.stop()

    def down(self):
        self.server.down()

    def up(self):
        self.server.up()

    @property
    def url(self):
        return self.server.url

    @property
    def port(self):
        return self.server.port


def run_standalone(name, default_port, add_arguments, from_args, banner, argv=None):
    """`python -m devstack.doubles.<name>_double`: serve one double until Ctrl-C."""
    import argparse

    ap = argparse.ArgumentParser(description=f"{name} double (devstack)")
    ap.add_argument("--port", type=int, default=default_port)
    ap.add_argument("--verbose", action="store_true")
    add_arguments(ap)
    args = ap.parse_args(argv)
    d = from_args(args, args.port, verbose=args.verbose).start()
    print(banner(d), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        d.stop()


def rand_id(prefix, n=24):
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(n))


def esc(s):
    return html.escape("" if s is None else str(s), quote=True)


def page(title, body):
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;width:100%}} td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}
button{{padding:.5rem 1.2rem;font-size:1rem;cursor:pointer}} input{{padding:.4rem;font-size:1rem}}
.note{{color:#666;font-size:.9rem}} .err{{color:#b00020}} pre{{white-space:pre-wrap;background:#f6f6f6;padding:.8rem}}
</style></head><body>
{body}
</body></html>"""


def now():
    return int(time.time())
