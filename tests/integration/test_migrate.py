"""`usher migrate`: applies the schema once, is idempotent, refuses a newer database.

Output contract: a line containing "applied" and the number of migrations applied by this
run next to it ("applied 12 migrations", "12 migrations applied", "applied: 0").
"""

from conftest import number_near

# Tables the rest of the suite relies on (names from SPEC §1 and the sections using them).
EXPECTED_TABLES = {
    "schema_migrations", "sessions", "users", "products", "product_prices", "instances",
    "groups", "tasks", "stripe_events", "waitlist_entries",
}


def applied_count(out, err):
    text = out + "\n" + err
    lines = [ln for ln in text.splitlines() if "applied" in ln.lower()]
    assert lines, f"no line containing 'applied' in the output:\n{text}"
    counts = [n for ln in lines for n in number_near("applied", ln)]
    assert counts, f"no count next to 'applied' in:\n{text}"
    return counts[0]


def test_migrate_applies_then_is_a_no_op(run_usher, db):
    rc, out, err = run_usher(["migrate"])
    assert rc == 0, err
    assert applied_count(out, err) > 0

    rc, out, err = run_usher(["migrate"])
    assert rc == 0, err
    assert applied_count(out, err) == 0


def test_migrate_creates_the_tables(run_usher, db):
    assert "schema_migrations" not in db.tables()
    rc, _, err = run_usher(["migrate"])
    assert rc == 0, err
    missing = EXPECTED_TABLES - db.tables()
    assert not missing, f"tables missing after migrate: {sorted(missing)}"
    versions = [r[0] for r in db.rows("SELECT version FROM schema_migrations")]
    assert versions and all(int(v) > 0 for v in versions)


def insert_future_version(db, version=9999):
    """Adds a schema_migrations row, filling any other required column with a plausible value."""
    cols, vals = ["version"], [version]
    for name, typ, notnull, has_default in db.columns("schema_migrations"):
        if name == "version" or not notnull or has_default:
            continue
        cols.append(name)
        vals.append(0 if any(t in typ for t in ("INT", "NUMERIC", "REAL", "DOUBLE")) else
                    ("false" if "BOOL" in typ else "9999_from_the_future"))
    marks = ", ".join("?" for _ in cols)
    db.exec(f"INSERT INTO schema_migrations ({', '.join(cols)}) VALUES ({marks})", *vals)


def test_a_newer_database_is_refused(run_usher, db):
    rc, _, err = run_usher(["migrate"])
    assert rc == 0, err
    insert_future_version(db)

    rc, out, err = run_usher(["migrate"])
    assert rc not in (0, None), (out, err)
    assert "newer" in err.lower(), err

    rc, out, err = run_usher(["serve"], timeout=15)
    assert rc is not None, "usher serve started on a database migrated by a newer Usher"
    assert rc != 0, (out, err)

