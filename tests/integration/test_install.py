"""`meson install` (SPEC: ship it): the binary, migrations, templates, static files, docs and
systemd units land under the prefix; the installed binary finds its data without
USHER_DATA_DIR, migrates and serves; the units pass `systemd-analyze verify` and their
`systemd-analyze security` exposure stays low.

One build into a temporary prefix for the whole module (about a minute on two cores). Not run
on the sanitizer pass (USHER_SANITIZED), nor with USHER_SKIP_INSTALL=1.
"""

import os
import re
import shutil
import subprocess
import time

import pytest
import requests

from conftest import REPO, clean_environ, free_port, new_secret_key

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("USHER_SANITIZED") or os.environ.get("USHER_SKIP_INSTALL")),
    reason="install test: once, on the normal pass")

UNITS = ["usher.service", "usher-worker@.service", "usher-migrate.service"]
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("install")
    build, prefix = root / "build", root / "prefix"
    for cmd in (["meson", "setup", str(build), str(REPO), f"--prefix={prefix}",
                 "-Dtests=false", "--buildtype=plain"],
                ["ninja", "-C", str(build)],
                ["meson", "install", "-C", str(build), "--no-rebuild", "--quiet"]):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, (cmd, p.stdout[-3000:], p.stderr[-3000:])
    return prefix


def installed_env(**extra):
    env = clean_environ()
    env.pop("USHER_DATA_DIR", None)
    env.update(extra)
    return env


def test_files_in_their_places(prefix):
    assert os.access(prefix / "bin" / "usher", os.X_OK)
    share = prefix / "share" / "usher"
    assert list((share / "migrations" / "sqlite").glob("*.sql"))
    assert list((share / "migrations" / "postgres").glob("*.sql"))
    assert (share / "templates").is_dir() and (share / "static" / "usher.css").is_file()
    assert (share / "examples" / "usher.env.example").is_file()
    assert (prefix / "share" / "doc" / "usher" / "operator.md").is_file()
    for unit in UNITS:
        text = (prefix / "lib" / "systemd" / "system" / unit).read_text()
        assert f"ExecStart={prefix}/bin/usher " in text
        assert "@" not in text.split("ExecStart=")[1].split("\n")[0]


def test_installed_binary_migrates_and_serves_without_data_dir(prefix, tmp_path):
    usher = str(prefix / "bin" / "usher")
    port = free_port()
    env = installed_env(SECRET_KEY=new_secret_key(), BIND=f"127.0.0.1:{port}",
                        DATABASE_URL=f"sqlite:///{tmp_path}/usher.sqlite3",
                        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", DEBUG="true")
    p = subprocess.run([usher, "migrate"], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "schema version" in p.stdout, p.stderr
    p = subprocess.run([usher, "catalog", "apply",
                        str(prefix / "share" / "usher" / "examples" / "catalog.json")],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    server = subprocess.Popen([usher, "serve"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while True:
            try:
                r = requests.get(base + "/health/", timeout=2)
                break
            except requests.ConnectionError:
                assert time.time() < deadline and server.poll() is None, "server did not start"
                time.sleep(0.2)
        assert r.status_code == 200, r.text
        page = requests.get(base + "/onboarding/", timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()  # templates
        css = requests.get(base + "/static/usher.css", timeout=5)
        assert css.status_code == 200 and css.text == (REPO / "static" / "usher.css").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_help_of_the_installed_binary(prefix, tmp_path):
    for args in (["--help"], ["serve", "--help"], ["task", "retry", "--help"]):
        p = subprocess.run([str(prefix / "bin" / "usher"), *args], env=installed_env(),
                           cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout.startswith("usage:"), (args, p.stderr)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze missing")
def test_units_verify(prefix):
    unitdir = prefix / "lib" / "systemd" / "system"
    p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        *[str(unitdir / u) for u in UNITS]],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stderr.strip() == "", p.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze missing")
@pytest.mark.parametrize("unit", ["usher.service", "usher-worker@.service"])
def test_units_exposure(prefix, unit):
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                        str(prefix / "lib" / "systemd" / "system" / unit)],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
    assert m, p.stdout + p.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, p.stdout
