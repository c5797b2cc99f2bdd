"""docs/ stays true: the configuration reference is the program's own table, every command
has --help, docs/cli.md repeats each --help verbatim, and the docs' examples run.

- docs/configuration.md holds `usher check --list-variables` between two markers, exactly;
  every variable name the code reads (a string literal passed to config.c's helpers, or to
  getenv anywhere in src/) is in that table, and every name in the table is read somewhere.
- `usher COMMAND --help` (and each subcommand's) exits 0 with usage on stdout, without any
  configuration, and docs/cli.md contains that output.
- The catalog example of docs/stripe.md is applied with `usher catalog apply`.
"""

import re
import subprocess

import pytest

from conftest import REPO, clean_environ, usher_binary

DOCS = REPO / "docs"
SRC = REPO / "src"

COMMANDS = [
    ["serve"], ["worker"], ["migrate"], ["check"], ["catalog"], ["catalog", "apply"],
    ["task"], ["task", "list"], ["task", "retry"], ["task", "probe"],
    ["user"], ["user", "sync"], ["user", "refresh"], ["user", "expire"], ["version"],
]
DOCUMENTED = [["serve"], ["worker"], ["migrate"], ["check"], ["catalog"], ["task"], ["user"],
              ["version"]]


def bare_run(args, tmp_path):
    """The binary with no Usher configuration at all, in an empty directory."""
    return subprocess.run([str(usher_binary()), *args], capture_output=True, text=True,
                          env=clean_environ(), cwd=tmp_path, timeout=30)


def variables_output(tmp_path):
    p = bare_run(["check", "--list-variables"], tmp_path)
    assert p.returncode == 0, p.stderr
    return p.stdout


def table_names(table):
    return re.findall(r"^\| `([A-Z0-9_]+)` \|", table, re.M)


def test_configuration_reference_is_the_programs_table(tmp_path):
    doc = (DOCS / "configuration.md").read_text()
    m = re.search(r"<!-- BEGIN usher check --list-variables -->\n(.*?)<!-- END", doc, re.S)
    assert m, "docs/configuration.md lacks the markers around the table"
    assert m.group(1) == variables_output(tmp_path), (
        "docs/configuration.md differs from `usher check --list-variables`; regenerate it")


def test_every_variable_the_code_reads_is_listed(tmp_path):
    listed = set(table_names(variables_output(tmp_path)))
    config_c = (SRC / "core" / "config.c").read_text()
    body = config_c.split("static const char *lookup(", 1)[1]  # after the table
    read = set(re.findall(
        r'\b(?:lookup|string_or|parse_bool|parse_int|optional_url)\(&?src, "([A-Z0-9_]+)"', body))
    for array in re.findall(r"names\[\] = \{([^}]*)\}|broker\[\] = \{([^}]*)\}", body):
        read |= set(re.findall(r'"([A-Z0-9_]+)"', "".join(array)))
    read |= set(re.findall(r'getenv\("([A-Z0-9_]+)"\)', body))
    for path in SRC.rglob("*.c"):
        read |= set(re.findall(r'getenv\("([A-Z0-9_]+)"\)', path.read_text()))
    assert len(read) > 40, sorted(read)
    assert read - listed == set(), "read by the code but not in the table"
    assert listed - read == set(), "in the table but never read"


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_help_for_every_command(args, tmp_path):
    for flag in ("--help", "-h"):
        p = bare_run([*args, flag], tmp_path)
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert p.stdout.startswith("usage:"), p.stdout
        assert p.stderr == ""


def test_top_level_help_names_every_command(tmp_path):
    p = bare_run(["--help"], tmp_path)
    assert p.returncode == 0 and p.stdout.startswith("usage:")
    for (cmd, *_) in DOCUMENTED:
        assert re.search(rf"^  {cmd}\b", p.stdout, re.M), cmd
    assert bare_run([], tmp_path).returncode == 2


def test_cli_doc_repeats_each_help(tmp_path):
    doc = (DOCS / "cli.md").read_text()
    for args in [[]] + DOCUMENTED:
        out = bare_run([*args, "--help"], tmp_path).stdout
        assert out in doc, f"docs/cli.md lacks the output of usher {' '.join(args)} --help"


def test_stripe_doc_catalog_example_applies(run_usher, tmp_path):
    doc = (DOCS / "stripe.md").read_text()
    m = re.search(r"```json\n(.*?)```", doc, re.S)
    assert m, "docs/stripe.md has no ```json catalog example"
    path = tmp_path / "catalog.json"
    path.write_text(m.group(1))
    rc, _, err = run_usher(["migrate"])
    assert rc == 0, err
    rc, out, err = run_usher(["catalog", "apply", str(path)])
    assert rc == 0, err
    assert "created" in out
    rc, out, err = run_usher(["catalog", "apply", str(path)])
    assert rc == 0 and "created 0" in out, (out, err)
