"""Running the C integration clients from pytest: `clients_driver` (tests/unit/clients_driver.c).

The driver is built next to the `usher` binary under test (USHER_BIN; in its build directory at
tests/unit/clients_driver), so the ASan+UBSan pass of scripts/test runs the clients sanitized
too. USHER_CLIENTS_DRIVER names another binary.

Used by tests/integration/test_clients_*.py (doubles) and, loaded by path, by
tests/conformance/test_clients_*.py (real Keycloak, stripe-mock). No fixtures from conftest
here, so both suites can share it.
"""

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Configuration variables the developer's shell must not leak into the driver.
_STRIP_PREFIXES = ("KEYCLOAK_", "OIDC_", "STRIPE_", "MAILGUN_", "HTTP_", "POSTGRES_", "USHER_",
                   "TASK_")
_STRIP_NAMES = {"SECRET_KEY", "DJANGO_SECRET_KEY", "DATABASE_URL", "SITE_NAME", "DEBUG"}
_KEEP = {"USHER_DATA_DIR", "USHER_BIN", "USHER_CLIENTS_DRIVER"}


def driver_path():
    explicit = os.environ.get("USHER_CLIENTS_DRIVER")
    if explicit:
        return Path(explicit)
    usher = Path(os.environ.get("USHER_BIN") or REPO / "build" / "usher")
    return usher.parent / "tests" / "unit" / "clients_driver"


def base_env(**settings):
    env = {k: v for k, v in os.environ.items()
           if k in _KEEP or not (k in _STRIP_NAMES or k.startswith(_STRIP_PREFIXES))}
    env.update({"USHER_DEMO": "1", "USHER_ENV_FILE": "/dev/null"})
    for k, v in settings.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


class DriverError(AssertionError):
    pass


class Driver:
    """Runs commands in one driver process: d.run(("kc.get", {"id": x}), …) → [dict, …];
    d.call("kc.get", id=x) → dict. The process's stderr (log lines) is kept in .stderr."""

    def __init__(self, **settings):
        self.path = driver_path()
        if not self.path.exists():
            raise DriverError(f"{self.path} is missing: build it (ninja -C <build>) or set "
                              f"USHER_CLIENTS_DRIVER")
        self.settings = settings
        self.stderr = ""

    def with_settings(self, **more):
        d = Driver(**{**self.settings, **more})
        return d

    def run(self, *commands, timeout=120):
        args = [str(self.path)]
        for name, params in commands:
            args += [name, json.dumps(params)]
        p = subprocess.run(args, env=base_env(**self.settings), capture_output=True, text=True,
                           timeout=timeout)
        self.stderr = p.stderr
        if p.returncode != 0:
            raise DriverError(f"clients_driver exited {p.returncode}:\n{p.stderr[-4000:]}")
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if marker in p.stderr:
                raise DriverError(f"sanitizer report:\n{p.stderr[-4000:]}")
        out = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        if len(out) != len(commands):
            raise DriverError(f"expected {len(commands)} answers, got {p.stdout!r}")
        return out

    def call(self, name, **params):
        return self.run((name, params))[0]


OK = 0
EINVAL = -1
ENOTFOUND = -2
ECONFLICT = -3
EUPSTREAM = -4
ELIMIT = -7
EFORBIDDEN = -8
ECONFIG = -9
KC_ATTRS_DROPPED = 1


def check_user_groups_search(d, user_id, group_ids, names, token):
    """The case both suites run (double and real Keycloak) for the admin check's call, GET
    /users/{id}/groups?search=&first=&max=: user_id joins group_ids, of which the groups named
    `names` contain `token` in some mix of case and one more does not. `search` is a
    case-insensitive substring of the name (subgroups too), first/max cut pages, and without
    first/max every membership comes."""
    def page(search, first, max_):
        return ("kc.user_groups_page",
                {"id": user_id, "search": search, "first": first, "max": max_})

    out = d.run(*[("kc.group_add", {"id": user_id, "group": g}) for g in group_ids],
                page(token.upper(), 0, 100), page(token, 0, 2), page(token, 2, 2),
                page("none" + token, 0, 100), ("kc.user_groups", {"id": user_id}))
    joined = len(group_ids)
    assert [o["rc"] for o in out] == [OK] * (joined + 5)
    out = out[joined:]
    assert sorted(g["name"] for g in out[0]["result"]) == sorted(names)
    pages = [[g["name"] for g in o["result"]] for o in out[1:3]]
    assert [len(p) for p in pages] == [2, len(names) - 2]
    assert sorted(pages[0] + pages[1]) == sorted(names)
    assert out[3]["result"] == []
    assert len(out[4]["result"]) == joined


def test_driver_is_built():
    assert driver_path().exists(), driver_path()


def test_driver_refuses_unknown_commands_and_bad_json():
    d = Driver()
    p = subprocess.run([str(d.path), "nope.nope", "{}"], env=base_env(), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "unknown command" in p.stderr
    p = subprocess.run([str(d.path), "metrics", "[1]"], env=base_env(), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2


def test_driver_stops_on_bad_client_settings():
    d = Driver()
    for var, value in (("HTTP_TIMEOUT_MS", "5"), ("HTTP_CONNECT_TIMEOUT_MS", "x"),
                       ("STRIPE_API_VERSION", "dahlia")):
        p = subprocess.run([str(d.path), "metrics", "{}"], env=base_env(**{var: value}),
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (var, p.stderr)
        assert var in p.stderr
