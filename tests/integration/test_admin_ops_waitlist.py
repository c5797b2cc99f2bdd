"""The admin console's waitlist page and CSV export (issue 12 item 4), on SQLite and
PostgreSQL: search by part of an address (hostile strings are text), keyset pages, and the
CSV: a header row, RFC 4180 quoting, UTF-8, the formula-injection guard, an attachment with a
safe name, every row of a list longer than one export chunk, in order."""

import csv
import io

from admin_ops_support import NOW
from admin_support import admin_app, admin_client, kc, keycloak_double  # noqa: F401 - fixtures


def add_entries(db, emails, synced=False):
    for i, e in enumerate(emails):
        db.exec("INSERT INTO waitlist_entries (email, created_at, synced_at) VALUES (?, ?, ?)",
                e, NOW + i, NOW + 60 if synced else None)


def read_csv(r):
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))


def test_list_search_and_pages(admin_client, db):
    add_entries(db, ["ann@example.test", "bob_x@example.test", "carl@other.test",
                     "100%@example.test"])
    page = admin_client.get("/admin/waitlist/")
    assert page.status_code == 200
    assert page.text.index("100%@example.test") < page.text.index("ann@example.test")
    assert "4 entries match." in page.text
    found = admin_client.get("/admin/waitlist/?q=OTHER").text
    assert "1 entry matches." in found
    assert "carl@other.test" in found and "ann@example.test" not in found
    # % and _ are characters, not wildcards.
    pct = admin_client.get("/admin/waitlist/?q=%25").text
    assert "100%@example.test" in pct and "ann@example.test" not in pct
    under = admin_client.get("/admin/waitlist/?q=_").text
    assert "bob_x@example.test" in under and "carl@other.test" not in under
    for hostile in ("%27%20OR%201%3D1%20--", "%3Cscript%3E", "%E2%80%AE", "%F0%9F%98%80"):
        r = admin_client.get("/admin/waitlist/?q=" + hostile)
        assert r.status_code == 200 and "No entries match." in r.text, hostile
    assert admin_client.get("/admin/waitlist/?q=%01").status_code == 400
    assert admin_client.get("/admin/waitlist/?q=" + "a" * 300).status_code == 400
    # 200 characters is the limit, however many bytes they take.
    assert admin_client.get("/admin/waitlist/?q=" + "%C3%A9" * 200).status_code == 200
    first = admin_client.get("/admin/waitlist/?limit=3").text
    assert "ann@example.test" not in first
    next_url = first.split('class="button" href="')[-1].split('"')[0].replace("&amp;", "&")
    assert "ann@example.test" in admin_client.get(next_url).text
    assert 'href="/admin/waitlist.csv?q=OTHER"' in found


def test_csv_quotes_guards_formulas_and_names_the_file(admin_client, db):
    hostile = ["=cmd|' /c calc'!a0@x.test", "+1@x.test", "-2@x.test", "@sum(a1)@x.test",
               "\tt@x.test", "a,\"b\"@x.test", "zoë@例え.test"]
    add_entries(db, hostile)
    r = admin_client.get("/admin/waitlist.csv")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    disp = r.headers["Content-Disposition"]
    assert disp.startswith('attachment; filename="waitlist-') and disp.endswith('.csv"')
    assert r.headers["Cache-Control"] == "no-store"
    rows = read_csv(r)
    assert rows[0] == ["email", "joined_at", "synced_to_mailing_list_at"]
    emails = [row[0] for row in rows[1:]]
    assert emails == ["'=cmd|' /c calc'!a0@x.test", "'+1@x.test", "'-2@x.test",
                      "'@sum(a1)@x.test", "'\tt@x.test", "a,\"b\"@x.test", "zoë@例え.test"]
    assert all(len(row) == 3 for row in rows)
    assert rows[1][1].endswith("Z") and rows[1][2] == ""
    assert b'"a,""b""@x.test"' in r.content  # RFC 4180 quoting
    assert r.content.endswith(b"\r\n")


def test_csv_streams_every_row_of_a_long_list_in_order(admin_client, db):
    emails = [f"person{i:05d}@example.test" for i in range(1203)]
    with db.connect() as conn:
        sql = "INSERT INTO waitlist_entries (email, created_at, synced_at) VALUES (?, ?, ?)"
        if db.kind != "sqlite":
            sql = sql.replace("?", "%s")
        cur = conn.cursor()
        cur.executemany(sql, [(e, NOW, NOW) for e in emails])
    rows = read_csv(admin_client.get("/admin/waitlist.csv"))
    assert [r[0] for r in rows[1:]] == emails
    assert all(r[2] for r in rows[1:])
    only = read_csv(admin_client.get("/admin/waitlist.csv?q=person0120"))
    assert [r[0] for r in only[1:]] == [f"person0120{i}@example.test" for i in range(3)]


def test_csv_of_an_empty_list_is_the_header(admin_client, db):
    rows = read_csv(admin_client.get("/admin/waitlist.csv"))
    assert rows == [["email", "joined_at", "synced_to_mailing_list_at"]]
    assert admin_client.get("/admin/waitlist.csv?q=%07").status_code == 400


def test_csv_is_for_admins_only(admin_app, db):
    add_entries(db, ["secret@example.test"])
    r = admin_app.client().get("/admin/waitlist.csv")
    assert r.status_code == 303 and "secret" not in r.text


def test_csv_download_abandoned_halfway_leaves_the_server_clean(admin_app, db):
    """A client that goes away mid-export: the stream's state is released and the server keeps
    answering. Run under ASan (scripts/test), a leak of any request here fails the clean exit
    at the end."""
    from admin_support import login_as

    client = login_as(admin_app, "bob")
    with db.connect() as conn:
        sql = "INSERT INTO waitlist_entries (email, created_at) VALUES (?, ?)"
        if db.kind != "sqlite":
            sql = sql.replace("?", "%s")
        conn.cursor().executemany(sql, [(f"p{i:06d}@example.test", NOW) for i in range(20000)])
    r = client.get("/admin/waitlist.csv", stream=True)
    assert r.status_code == 200
    first = next(r.iter_content(chunk_size=4096))
    assert first.startswith(b"email,joined_at,")
    r.close()
    assert client.get("/admin/waitlist/").status_code == 200
    # A search and a searched export too (their LIKE patterns are freed: ASan would say).
    assert "p000001@example.test" in client.get("/admin/waitlist/?q=p000001").text
    assert client.get("/admin/waitlist.csv?q=p00001").content.count(b"\r\n") == 11
    admin_app.stop()
