"""`usher catalog apply FILE` (SPEC §11): idempotent, all-or-nothing, clear errors.

Output contract: the numbers of created and updated records next to the words "created" and
"updated" ("products: created 4, updated 0" or "4 created, 0 updated"; one line per kind or
one summary line).
"""

import json

import pytest

from conftest import REPO, number_near

CATALOG = REPO / "devstack" / "catalog.json"


@pytest.fixture
def migrated(run_usher):
    rc, _, err = run_usher(["migrate"])
    assert rc == 0, err


def counts(db):
    return {t: db.scalar(f"SELECT COUNT(*) FROM {t}")
            for t in ("products", "product_prices", "instances", "groups")}


def test_apply_is_idempotent(run_usher, db, migrated):
    assert CATALOG.exists(), f"{CATALOG} is missing"
    rc, out, err = run_usher(["catalog", "apply", str(CATALOG)])
    assert rc == 0, err
    text = out + err
    created = number_near("created", text)
    assert created and sum(created) > 0, text
    after_first = counts(db)
    assert after_first["products"] > 0

    rc, out, err = run_usher(["catalog", "apply", str(CATALOG)])
    assert rc == 0, err
    text = out + err
    created, updated = number_near("created", text), number_near("updated", text)
    assert created and sum(created) == 0, text
    assert updated and sum(updated) == 0, text
    assert counts(db) == after_first


def test_relative_path_from_the_repo(run_usher, migrated):
    rc, _, err = run_usher(["catalog", "apply", "devstack/catalog.json"], cwd=REPO)
    assert rc == 0, err


def test_syntax_error_names_the_file(run_usher, db, migrated, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"products": [ {"name": "x", ')
    rc, out, err = run_usher(["catalog", "apply", str(bad)])
    assert rc == 2, (rc, out, err)
    assert str(bad) in err or bad.name in err, err
    assert counts(db)["products"] == 0


def test_invalid_record_changes_nothing(run_usher, db, migrated, tmp_path):
    doc = json.loads(CATALOG.read_text())
    assert isinstance(doc, dict) and doc.get("products"), "catalog.json has no products list"
    # scalar fields of a real product only (nested prices would collide on their unique ids)
    broken = {k: v for k, v in doc["products"][0].items() if not isinstance(v, (list, dict))}
    broken["name"] = "Broken Product"
    broken["slug"] = "Not A Valid Slug!"
    doc["products"].append(broken)
    bad = tmp_path / "invalid.json"
    bad.write_text(json.dumps(doc))

    before = counts(db)
    rc, out, err = run_usher(["catalog", "apply", str(bad)])
    assert rc == 2, (rc, out, err)
    assert str(bad) in err or bad.name in err, err
    assert "slug" in err, err
    assert counts(db) == before, "a failed apply changed the database"


def test_missing_file(run_usher, migrated, tmp_path):
    rc, out, err = run_usher(["catalog", "apply", str(tmp_path / "nope.json")])
    assert rc not in (0, None)
    assert "nope.json" in err
