"""The launchers: devstack/doubles/run.py (all three in one process) and each module run
standalone with `python3 -m devstack.doubles.<name>`."""

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]

PYTHONS = [sys.executable] + (["/usr/bin/python3"] if Path("/usr/bin/python3").exists()
                              and sys.executable != "/usr/bin/python3" else [])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def launched(tmp_path):
    procs = []

    def launch(args, python=sys.executable):
        p = subprocess.Popen([python] + args, cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p

    yield launch
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_run_py_starts_all_three(launched, tmp_path):
    ready, envf = tmp_path / "ready.json", tmp_path / "doubles.env"
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"groups": ["team-top"], "products": [
        {"name": "P", "slug": "p", "prices": [
            {"stripe_price_id": "price_p_m", "billing_period": "monthly", "amount": 500,
             "currency": "usd"}]}],
        "instances": [{"product": "p", "name": "one", "groups": ["p-one"]}]}))
    p = launched(["devstack/doubles/run.py", "--stripe-port", "0", "--keycloak-port", "0",
                  "--mailgun-port", "0", "--ready-file", str(ready), "--env-file", str(envf),
                  "--catalog", str(catalog), "--usher-url", "http://127.0.0.1:18000"])
    deadline = time.monotonic() + 15
    while not ready.exists():
        assert p.poll() is None, p.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    urls = json.loads(ready.read_text())
    env = dict(line.split("=", 1) for line in envf.read_text().splitlines())
    assert env["STRIPE_API_BASE"] == urls["stripe"]
    assert env["KEYCLOAK_SERVER_URL"] == urls["keycloak"]
    assert env["MAILGUN_API_BASE"] == urls["mailgun"]
    assert env["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    assert env["STRIPE_CHECKOUT_UI"] == "hosted"
    # stripe: catalog loaded, webhook URL derived from --usher-url
    r = requests.get(urls["stripe"] + "/v1/prices/price_p_m",
                     headers={"Authorization": "Bearer " + env["STRIPE_SECRET_KEY"]}, timeout=5)
    assert r.status_code == 200
    cfg = requests.get(urls["stripe"] + "/_control/config", timeout=5).json()
    assert cfg["webhook_url"] == "http://127.0.0.1:18000/onboarding/webhook/"
    # keycloak: demo admin, ADMIN_EDIT, and its emails land in the Mailgun inbox
    kc, realm = urls["keycloak"], env["KEYCLOAK_REALM"]
    tok = requests.post(f"{kc}/realms/{realm}/protocol/openid-connect/token",
                        data={"grant_type": "client_credentials"},
                        auth=(env["KEYCLOAK_ADMIN_CLIENT_ID"],
                              env["KEYCLOAK_ADMIN_CLIENT_SECRET"]), timeout=5).json()
    h = {"Authorization": "Bearer " + tok["access_token"]}
    users = requests.get(f"{kc}/admin/realms/{realm}/users",
                         params={"username": "admin", "exact": "true"}, headers=h,
                         timeout=5).json()
    assert len(users) == 1
    # the realm's groups are the catalog's (top-level and per instance) plus usher-admins
    groups = requests.get(f"{kc}/admin/realms/{realm}/groups", headers=h, timeout=5).json()
    assert sorted(g["name"] for g in groups) == ["p-one", "team-top", "usher-admins"]
    prof = requests.get(f"{kc}/admin/realms/{realm}/users/profile", headers=h, timeout=5)
    assert prof.json()["unmanagedAttributePolicy"] == "ADMIN_EDIT"
    r = requests.put(f"{kc}/admin/realms/{realm}/users/{users[0]['id']}/execute-actions-email",
                     json=["UPDATE_PASSWORD"], headers=h, timeout=5)
    assert r.status_code == 204
    msgs = requests.get(urls["mailgun"] + "/_control/messages", timeout=5).json()
    assert msgs[0]["to"] == ["admin@example.test"] and "action-token" in msgs[0]["text"]
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=5) == 0


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("module,probe", [
    ("stripe_double", "/_control/config"),
    ("keycloak_double", "/realms/usher/.well-known/openid-configuration"),
    ("mailgun_double", "/inbox"),
])
def test_module_runs_standalone(launched, module, probe, python):
    port = free_port()
    launched(["-m", f"devstack.doubles.{module}", "--port", str(port)], python=python)
    assert wait_http(f"http://127.0.0.1:{port}{probe}").status_code == 200


def test_binds_loopback_only(stripe_double):
    host = stripe_double.server._httpd.server_address[0]
    assert host == "127.0.0.1"


def test_script_path_works_too(launched):
    port = free_port()
    launched([str(REPO / "devstack/doubles/mailgun_double.py"), "--port", str(port)])
    assert wait_http(f"http://127.0.0.1:{port}/inbox").status_code == 200
