"""Configuration (SPEC §10, §11): environment, `.env`, aliases, exit status 2, `usher check`."""

import re
from urllib.parse import urlparse

import pytest

from conftest import new_secret_key

sqlite_only = pytest.mark.backend("sqlite")


def assert_config_error(result, name):
    rc, out, err = result
    assert rc is not None, f"usher kept running with a bad {name}"
    assert rc == 2, f"exit {rc}, expected 2; stderr:\n{err}"
    assert name in err, f"stderr does not name {name}:\n{err}"


@sqlite_only
def test_missing_secret_key_stops_serve(run_usher):
    assert_config_error(run_usher(["serve"], env={"SECRET_KEY": None}, timeout=10), "SECRET_KEY")


@sqlite_only
def test_malformed_bind_stops_serve(run_usher):
    for bind in ("nonsense", "127.0.0.1:99999", "127.0.0.1:"):
        assert_config_error(run_usher(["serve"], env={"BIND": bind}, timeout=10), "BIND")


@sqlite_only
def test_unsupported_database_url_stops_serve(run_usher):
    for url in ("mysql://x", "nonsense", "postgres//x"):
        assert_config_error(run_usher(["serve"], env={"DATABASE_URL": url}, timeout=10),
                            "DATABASE_URL")


@sqlite_only
def test_malformed_web_threads_stops_serve(run_usher):
    for threads in ("0", "abc", "-1", "4x"):
        assert_config_error(run_usher(["serve"], env={"WEB_THREADS": threads}, timeout=10),
                            "WEB_THREADS")


@sqlite_only
def test_dotenv_in_working_directory_is_read(usher, workdir):
    (workdir / ".env").write_text("# brand\nSITE_NAME=Acme\n")
    s = usher()
    r = s.get("/onboarding/")
    assert r.status_code == 200
    assert "Acme" in r.text


@sqlite_only
def test_dotenv_can_hold_the_secret_key(usher, workdir):
    (workdir / ".env").write_text(f"SECRET_KEY={new_secret_key()}\n")
    s = usher({"SECRET_KEY": None})
    assert s.get("/health/").status_code == 200


@sqlite_only
def test_real_environment_overrides_dotenv(usher, workdir):
    (workdir / ".env").write_text("SITE_NAME=FromDotenvFile\n")
    s = usher({"SITE_NAME": "FromRealEnv"})
    page = s.get("/onboarding/").text
    assert "FromRealEnv" in page
    assert "FromDotenvFile" not in page


@sqlite_only
def test_django_secret_key_alias(usher):
    s = usher({"SECRET_KEY": None, "DJANGO_SECRET_KEY": new_secret_key()})
    assert s.get("/health/").status_code == 200


@pytest.mark.backend("postgres")
def test_postgres_variables_select_postgresql(usher, db_url, db):
    u = urlparse(db_url)
    s = usher({
        "DATABASE_URL": None,
        "POSTGRES_DB": u.path.lstrip("/"),
        "POSTGRES_USER": u.username,
        "POSTGRES_PASSWORD": u.password,
        "POSTGRES_HOST": u.hostname,
        "POSTGRES_PORT": str(u.port),
    })
    assert s.get("/health/").status_code == 200
    # migrate ran through the same variables: the schema is in that PostgreSQL database
    assert "schema_migrations" in db.tables()


@sqlite_only
def test_check_accepts_a_valid_configuration(run_usher, base_env):
    rc, _, err = run_usher(["migrate"])
    assert rc == 0, err
    rc, out, err = run_usher(["check"])
    assert rc == 0, f"usher check exited {rc}:\n{out}\n{err}"
    key = base_env["SECRET_KEY"]
    assert key not in out and key not in err


@sqlite_only
@pytest.mark.parametrize("bad", [{"WEB_THREADS": "abc"}, {"SECRET_KEY": None},
                                 {"DATABASE_URL": "mysql://x"}, {"BIND": "nonsense"}])
def test_check_rejects_an_invalid_configuration(run_usher, base_env, bad):
    rc, out, err = run_usher(["check"], env=bad)
    assert rc == 2, f"usher check exited {rc}:\n{out}\n{err}"
    key = base_env["SECRET_KEY"]
    assert key not in out and key not in err


@sqlite_only
def test_check_never_prints_the_database_password(run_usher):
    password = "pw-" + new_secret_key()[:24]
    # A PostgreSQL nobody listens on: check must fail to reach it, and say so without the URL's
    # password.
    url = f"postgres://usher:{password}@127.0.0.1:9/usher"
    rc, out, err = run_usher(["check"], env={"DATABASE_URL": url}, timeout=60)
    assert rc not in (0, None), (out, err)
    assert password not in out and password not in err


@sqlite_only
def test_serve_never_logs_secrets(usher):
    key = new_secret_key()
    s = usher({"SECRET_KEY": key, "PROMETHEUS_METRICS_API_KEY": "metrics-" + key[:20]})
    s.get("/health/")
    s.get("/onboarding/")
    s.stop()
    assert key not in s.log
    assert "metrics-" + key[:20] not in s.log


@sqlite_only
def test_version(run_usher):
    rc, out, err = run_usher(["version"], env={"SECRET_KEY": None})
    assert rc == 0, err
    assert re.search(r"\d+\.\d+\.\d+", out), out


@sqlite_only
def test_unknown_subcommand_is_a_usage_error(run_usher):
    rc, out, err = run_usher(["no-such-command"])
    assert rc not in (0, None), (out, err)
