"""The admin console's products, prices, instances and groups (SPEC §9, issue 12 item 2) on
SQLite and PostgreSQL: every list with its filters, search and keyset pages; the products'
inline order/flags edit; the product edit in sections with its prices; the instance edit with
each cap rule; concurrent edits; hostile input; audit entries; and agreement with
`usher catalog apply`."""

import json
import re
from urllib.parse import quote

import pytest

from admin_support import (  # noqa: F401 - fixtures
    CATALOG, admin_app, admin_client, apply_catalog, fp_of, kc, keycloak_double, text_of)


@pytest.fixture
def catalog(admin_app, run_usher, tmp_path, db):
    apply_catalog(run_usher, tmp_path)
    return {slug: db.scalar("SELECT id FROM products WHERE slug = ?", slug)
            for slug in ("cloud", "vault", "storage-100")}


def names_in(page):
    return re.findall(r'<a href="/admin/products/edit/\?id=\d+">([^<]*)</a>', page)


def audit_rows(db, action=None):
    rows = db.rows("SELECT actor, action, target_type, target_id, detail FROM audit_log "
                   "WHERE actor <> 'cli' ORDER BY id")
    out = [(a, act, t, tid, json.loads(d)) for a, act, t, tid, d in rows]
    return [r for r in out if action is None or r[1] == action]


def catalog_version(db):
    return db.scalar("SELECT version FROM catalog_version WHERE id = 1")


# --- products list --------------------------------------------------------------------------


def test_products_list_columns_filters_and_search(admin_client, catalog):
    r = admin_client.get("/admin/products/")
    assert r.status_code == 200
    assert names_in(r.text) == ["Cloud", "Vault", "Storage 100%_x"]  # by order
    assert "storage-100" in r.text and ">plan<" in r.text
    cases = {"page=addon": ["Vault"], "page=storage": ["Storage 100%_x"],
             "coming_soon=yes": ["Storage 100%_x"], "coming_soon=no": ["Cloud", "Vault"],
             "featured=yes": ["Cloud"], "active=no": [], "addon=yes": ["Storage 100%_x"],
             "q=VAU": ["Vault"], "q=storage-1": ["Storage 100%_x"], "q=" + quote("%"):
             ["Storage 100%_x"], "q=" + quote("0%_x"): ["Storage 100%_x"],
             "q=" + quote("_"): ["Storage 100%_x"], "q=" + quote("' OR 1=1 --"): [], "q=" + quote("\\"): [], "q=" + quote("x\\"): [],
             "page=plan&featured=yes&q=cl": ["Cloud"]}
    for query, want in cases.items():
        r = admin_client.get("/admin/products/?" + query)
        assert r.status_code == 200, query
        assert names_in(r.text) == want, query


@pytest.mark.parametrize("query", [
    "q=" + "x" * 10240, "q=%00", "q=a%00b", "q=%ff%fe", "q=%0a", "page=other",
    "coming_soon=maybe", "limit=0", "limit=201", "limit=abc", "after=forged",
    "after=" + "a" * 5000, "after=3132.00000000000000000000000000000000"])
def test_products_list_hostile_input_is_a_clear_400(admin_client, catalog, query):
    r = admin_client.get("/admin/products/?" + query)
    assert r.status_code in (200, 400), (query, r.status_code)
    if r.status_code == 400:
        assert "Admin console" in r.text  # inside the admin layout, with a message
        assert "<h1" in r.text


def test_products_keyset_pages_and_foreign_cursor(admin_client, catalog):
    seen, url = [], "/admin/products/?limit=1"
    while url:
        r = admin_client.get(url.replace("&amp;", "&"))
        assert r.status_code == 200
        seen += names_in(r.text)
        m = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = m and m.group(1)
    assert seen == ["Cloud", "Vault", "Storage 100%_x"]
    first = admin_client.get("/admin/products/?limit=1").text
    cursor = re.search(r"after=([0-9a-f.]+)", first).group(1)
    # A products cursor on another list, and a tampered one, are refused.
    r = admin_client.get("/admin/instances/?after=" + cursor)
    assert r.status_code == 400 and "another list" in r.text
    r = admin_client.get("/admin/products/?after=" + cursor[:-1] + ("0" if cursor[-1] != "0" else "1"))
    assert r.status_code == 400


# --- inline order and flags --------------------------------------------------------------------


def inline(client, pid, fp, **fields):
    data = {"id": str(pid), "fp": fp, "back": "/admin/products/?page=plan"}
    data.update({k: v for k, v in fields.items() if v is not None})
    return client.post_form("/admin/products/inline/", data)


def test_inline_edit_saves_audits_and_moves_the_catalog_version(admin_client, catalog, db):
    page = admin_client.get("/admin/products/").text
    fp = fp_of(page, catalog["vault"])
    before = catalog_version(db)
    r = inline(admin_client, catalog["vault"], fp, display_order="5", is_featured="on",
               is_active="on")
    assert r.status_code == 303
    assert r.headers["Location"] == "/admin/products/?page=plan"
    row = db.rows("SELECT display_order, is_featured, is_coming_soon, is_active FROM products "
                  "WHERE slug = 'vault'")[0]
    assert [int(x) for x in row] == [5, 1, 0, 1]
    assert catalog_version(db) > before
    (entry,) = audit_rows(db, "product.update")
    assert entry[:4] == ("bob", "product.update", "product", str(catalog["vault"]))
    assert entry[4] == {"before": {"display_order": 20, "is_featured": False},
                        "after": {"display_order": 5, "is_featured": True}}
    shown = admin_client.get("/admin/products/").text
    assert "Saved the product" in shown
    assert names_in(shown)[0] == "Vault"  # order 5 now comes first


def test_inline_edit_needs_csrf(admin_client, catalog, db):
    fp = fp_of(admin_client.get("/admin/products/").text, catalog["vault"])
    r = admin_client.post("/admin/products/inline/",
                          data={"id": str(catalog["vault"]), "fp": fp, "display_order": "1"})
    assert r.status_code == 403
    r = admin_client.post_form("/admin/products/inline/",
                               {"id": str(catalog["vault"]), "fp": fp, "display_order": "1",
                                "csrf_token": "forged"})
    assert r.status_code == 403
    assert db.scalar("SELECT display_order FROM products WHERE slug = 'vault'") == 20
    assert audit_rows(db) == []


def test_inline_edit_conflict_and_bad_input_write_nothing(admin_client, catalog, db):
    fp = fp_of(admin_client.get("/admin/products/").text, catalog["vault"])
    db.exec("UPDATE products SET is_featured = true WHERE slug = 'vault'")  # someone else
    r = inline(admin_client, catalog["vault"], fp, display_order="1", is_active="on")
    assert r.status_code == 303
    assert "changed by someone else" in text_of(admin_client.get("/admin/products/").text)
    assert db.scalar("SELECT display_order FROM products WHERE slug = 'vault'") == 20
    fp = fp_of(admin_client.get("/admin/products/").text, catalog["vault"])
    for order in ("1.5", "", "99999999", "1e3", "-"):
        r = inline(admin_client, catalog["vault"], fp, display_order=order)
        assert r.status_code == 303
        assert "Nothing was saved" in text_of(admin_client.get("/admin/products/").text)
    assert db.scalar("SELECT display_order FROM products WHERE slug = 'vault'") == 20
    for forged in ("0", "-1", "abc", "99999999", "1 OR 1=1", "9" * 30):
        r = inline(admin_client, forged, fp, display_order="1")
        assert r.status_code == 404, forged
    assert audit_rows(db) == []


# --- product edit -------------------------------------------------------------------------------


def edit_form(client, pid):
    r = client.get(f"/admin/products/edit/?id={pid}")
    assert r.status_code == 200
    page = r.text
    form = {}
    for m in re.finditer(r'<input type="(?:text|number|url|hidden)"[^>]*name="([^"]+)"'
                         r'[^>]*value="([^"]*)"', page):
        form[m.group(1)] = m.group(2).replace("&amp;", "&").replace("&quot;", '"').replace(
            "&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")
    for m in re.finditer(r'<input type="checkbox" name="([^"]+)"( checked)?', page):
        if m.group(2):
            form[m.group(1)] = "on"
    for m in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', page):
        form[m.group(1)] = m.group(2).replace("&amp;", "&")
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        sel = re.search(r'<option value="([^"]*)" selected', m.group(2)) or \
            re.search(r'<option value="([^"]*)"', m.group(2))  # a browser takes the first
        form[m.group(1)] = sel.group(1) if sel else ""
    form.pop("csrf_token", None)
    form.pop("new_currency", None)
    form.pop("new_is_active", None)
    return page, form


def test_product_edit_shows_sections_and_saves_with_prices(admin_client, catalog, db):
    page, form = edit_form(admin_client, catalog["cloud"])
    for legend in ("Basics", "Display", "Features", "Type", "Status", "Prices"):
        assert f"<legend>{legend}</legend>" in page
    assert "price_cloud_m" in page and "$10.00" in page
    version = catalog_version(db)
    price_m = db.scalar("SELECT id FROM product_prices WHERE stripe_price_id = 'price_cloud_m'")
    form.update({"name": "Cloud Plus", "tagline": "Now with more", "features": "A\n\nB \n",
                 f"price{price_m}_amount": "1200", "new_stripe_price_id": "price_cloud_eur",
                 "new_billing_period": "monthly", "new_amount": "900", "new_currency": "EUR",
                 "new_is_active": "on"})
    r = admin_client.post_form(f"/admin/products/edit/?id={catalog['cloud']}", form)
    assert r.status_code == 303, text_of(r.text)[:600]
    row = db.rows("SELECT name, tagline, features FROM products WHERE slug = 'cloud'")[0]
    assert tuple(row) == ("Cloud Plus", "Now with more", "A\nB")
    assert db.scalar("SELECT amount FROM product_prices WHERE stripe_price_id = "
                     "'price_cloud_m'") == 1200
    assert db.scalar("SELECT currency FROM product_prices WHERE stripe_price_id = "
                     "'price_cloud_eur'") == "EUR"
    assert catalog_version(db) > version
    (entry,) = audit_rows(db, "product.update")
    assert entry[4]["before"]["name"] == "Cloud" and entry[4]["after"]["name"] == "Cloud Plus"
    assert len(entry[4]["after"]["prices"]) == 3
    assert "Saved the product" in admin_client.get(r.headers["Location"]).text


@pytest.mark.parametrize("change,words", [
    ({"name": ""}, "Name"),
    ({"tagline": "t" * 129}, "Tagline"),
    ({"standalone_url": "javascript:alert(1)"}, "Standalone URL"),
    ({"parent": "no-such"}, "Parent product"),
    ({"display_order": "1.5"}, "Order"),
    ({"page": "nowhere"}, "Page"),
    ({"name": "Vault"}, "already called"),
    ({"requires_instance": None, "provisioner": "group"}, "Provisioner"),
    ({"PRICE_currency": "usd"}, "Price price_cloud_m"),
    ({"PRICE_amount": "-5"}, "Price price_cloud_m"),
    ({"PRICE_entitlements": "{not json"}, "Price price_cloud_m"),
    ({"new_stripe_price_id": "price_vault_m", "new_amount": "1", "new_currency": "USD"},
     "another product"),
    ({"new_stripe_price_id": "price_cloud_m2", "new_amount": "1", "new_is_active": "on",
      "new_currency": "USD"}, "second active monthly USD"),
    ({"features": "x" * 300}, "Features"),
])
def test_product_edit_refuses_bad_values_and_writes_nothing(admin_client, catalog, db, change,
                                                            words):
    _, form = edit_form(admin_client, catalog["cloud"])
    price_m = db.scalar("SELECT id FROM product_prices WHERE stripe_price_id = 'price_cloud_m'")
    for k, v in change.items():
        k = k.replace("PRICE", f"price{price_m}")
        if v is None:
            form.pop(k, None)
        else:
            form[k] = v
    before = db.rows("SELECT * FROM products ORDER BY id")
    prices = db.rows("SELECT * FROM product_prices ORDER BY id")
    r = admin_client.post_form(f"/admin/products/edit/?id={catalog['cloud']}", form)
    assert r.status_code == 400, (change, r.status_code, text_of(r.text)[:500])
    assert "Nothing was saved" in text_of(r.text)
    assert words in text_of(r.text)
    assert db.rows("SELECT * FROM products ORDER BY id") == before
    assert db.rows("SELECT * FROM product_prices ORDER BY id") == prices
    assert audit_rows(db) == []


def test_product_edit_conflict_and_forged_ids(admin_client, catalog, db):
    _, form = edit_form(admin_client, catalog["cloud"])
    db.exec("UPDATE product_prices SET amount = 1111 WHERE stripe_price_id = 'price_cloud_m'")
    form["name"] = "Mine"
    r = admin_client.post_form(f"/admin/products/edit/?id={catalog['cloud']}", form)
    assert r.status_code == 409
    assert "changed by someone else" in text_of(r.text)
    assert db.scalar("SELECT name FROM products WHERE slug = 'cloud'") == "Cloud"
    assert audit_rows(db) == []
    for forged in ("0", "-3", "abc", "99999999", "' OR '1'='1", "1e3", "9" * 40, ""):
        r = admin_client.get("/admin/products/edit/?id=" + quote(forged))
        assert r.status_code == 404, forged
        assert "no such product" in text_of(r.text)
        r = admin_client.post_form("/admin/products/edit/?id=" + quote(forged), form)
        assert r.status_code == 404, forged


def test_catalog_apply_wins_for_what_the_file_names_and_stays_idempotent(
        admin_client, catalog, db, run_usher, tmp_path):
    # An admin edit on a product the file names, and one on a product it does not.
    db.exec("INSERT INTO products (name, slug, page, created_at, updated_at) "
            "VALUES ('Extra', 'extra', 'addon', 1, 1)")
    extra = db.scalar("SELECT id FROM products WHERE slug = 'extra'")
    for pid, name in ((catalog["cloud"], "Cloud (admin)"), (extra, "Extra (admin)")):
        _, form = edit_form(admin_client, pid)
        form["name"] = name
        r = admin_client.post_form(f"/admin/products/edit/?id={pid}", form)
        assert r.status_code == 303, text_of(r.text)[:400]
    out = apply_catalog(run_usher, tmp_path)
    assert re.search(r"products:\s+created 0, updated 1", out), out
    assert db.scalar("SELECT name FROM products WHERE slug = 'cloud'") == "Cloud"
    assert db.scalar("SELECT name FROM products WHERE slug = 'extra'") == "Extra (admin)"
    out = apply_catalog(run_usher, tmp_path)
    assert re.search(r"products:\s+created 0, updated 0", out), out
    assert re.search(r"instances:\s+created 0, updated 0", out), out


# --- prices -------------------------------------------------------------------------------------


def price_ids(page):
    return re.findall(r'<th scope="row">(price_[a-z_0-9]+)</th>', page)


def test_prices_list_filters_and_search(admin_client, catalog):
    cases = {"": ["price_cloud_m", "price_cloud_y", "price_vault_m", "price_storage_m"],
             f"product={catalog['vault']}": ["price_vault_m"],
             "period=annual": ["price_cloud_y"], "active=no": ["price_storage_m"],
             "q=CLOUD_M": ["price_cloud_m"], "q=vau": ["price_vault_m"],
             "q=" + quote("%"): ["price_storage_m"],  # only the product name holds a %
             "q=" + quote("'\""): []}
    for query, want in cases.items():
        r = admin_client.get("/admin/prices/?" + query)
        assert r.status_code == 200, query
        assert price_ids(r.text) == want, query
    assert "$3.00" in admin_client.get("/admin/prices/").text
    assert price_ids(admin_client.get("/admin/prices/?product=999999").text) == []
    for bad in ("period=weekly", "active=2", "product=abc", "after=x.y"):
        r = admin_client.get("/admin/prices/?" + bad)
        assert r.status_code in (400, 404), bad


# --- instances ----------------------------------------------------------------------------------


def instance_names(page):
    return re.findall(r'<a href="/admin/instances/edit/\?id=\d+">([^<]*)</a>', page)


def test_instances_list_filters_search_and_columns(admin_client, catalog):
    r = admin_client.get("/admin/instances/")
    assert instance_names(r.text) == ["foggy", "cirrus"]
    assert "nextcloud-foggy" in r.text and "https://foggy.example.test" in r.text
    assert "secret-foggy-key" not in r.text
    cases = {"auto_allocate=no": ["cirrus"], "active=yes": ["foggy", "cirrus"],
             f"product={catalog['vault']}": [], f"product={catalog['cloud']}": ["foggy", "cirrus"],
             "q=CIRR": ["cirrus"], "q=foggy.example": ["foggy"], "q=" + quote("%"): []}
    for query, want in cases.items():
        r = admin_client.get("/admin/instances/?" + query)
        assert r.status_code == 200, query
        assert instance_names(r.text) == want, query


def instance_form(client, iid):
    r = client.get(f"/admin/instances/edit/?id={iid}")
    assert r.status_code == 200
    page = r.text
    form = {"id": str(iid), "fp": re.search(r'name="fp" value="([0-9a-f]+)"', page).group(1),
            "base_url": re.search(r'name="base_url" value="([^"]*)"', page).group(1),
            "groups": re.search(r'name="groups"[^>]*>([^<]*)</textarea>', page).group(1)}
    for cap in ("soft_cap", "allocation_cap", "hard_cap"):
        form[cap] = re.search(rf'name="{cap}" value="([^"]*)"', page).group(1)
    for flag in ("auto_allocate", "is_active"):
        if re.search(rf'name="{flag}" checked', page):
            form[flag] = "on"
    return page, form


def seat(db, iid, n):
    db.exec("UPDATE instances SET allocated_seats = ? WHERE id = ?", n, iid)


def test_instance_edit_saves_caps_groups_and_key(admin_client, catalog, db):
    iid = db.scalar("SELECT id FROM instances WHERE name = 'foggy'")
    seat(db, iid, 12)
    seated = db.scalar("SELECT id FROM users WHERE username = 'bob'")
    cloud = catalog["cloud"]
    db.exec("INSERT INTO instance_assignments (user_id, product_id, instance_id, state, "
            "assigned_at, created_at) VALUES (?, ?, ?, 'active', 1, 1)", seated, cloud, iid)
    page, form = instance_form(admin_client, iid)
    assert "Seats in use: <strong>12</strong>" in page
    assert "secret-foggy-key" not in page and "A key is stored" in page
    form.update({"soft_cap": "50", "allocation_cap": "60", "hard_cap": "80",
                 "groups": "nextcloud-foggy\nnextcloud-cirrus", "allocated_seats": "0"})
    form.pop("auto_allocate")
    r = admin_client.post_form(f"/admin/instances/edit/?id={iid}", form)
    assert r.status_code == 303, text_of(r.text)[:500]
    row = db.rows("SELECT soft_cap, allocation_cap, hard_cap, allocated_seats, auto_allocate, "
                  "api_key FROM instances WHERE id = ?", iid)[0]
    assert [int(x) for x in row[:5]] == [50, 60, 80, 12, 0]  # seats untouched
    assert row[5] == "secret-foggy-key"  # an empty key field keeps the key
    groups = [g for (g,) in db.rows("SELECT g.name FROM instance_groups ig JOIN groups g "
                                    "ON g.id = ig.group_id WHERE ig.instance_id = ? "
                                    "ORDER BY g.name", iid)]
    assert groups == ["nextcloud-cirrus", "nextcloud-foggy"]
    (entry,) = audit_rows(db, "instance.update")
    # The seated user's Keycloak groups follow: a sync is queued with the change.
    assert db.scalar("SELECT count(*) FROM tasks WHERE name = 'sync_user_post_checkout' "
                     "AND args = ?", json.dumps({"user_id": seated}, separators=(",", ":"))) == 1
    assert entry[4]["before"]["hard_cap"] == 100 and entry[4]["after"]["hard_cap"] == 80
    assert entry[4]["after"]["groups"] == ["nextcloud-cirrus", "nextcloud-foggy"]
    # A new key replaces the old one; the log says so without the key.
    _, form = instance_form(admin_client, iid)
    form["api_key"] = "new-secret-key"
    assert admin_client.post_form(f"/admin/instances/edit/?id={iid}", form).status_code == 303
    assert db.scalar("SELECT api_key FROM instances WHERE id = ?", iid) == "new-secret-key"
    entries = audit_rows(db, "instance.update")
    assert entries[-1][4]["after"] == {"api_key_replaced": True}
    assert "new-secret-key" not in json.dumps(entries)
    assert "new-secret-key" not in admin_client.get("/admin/audit/").text


@pytest.mark.parametrize("caps,field_words", [
    ({"soft_cap": "95"}, ["soft cap (95) cannot be above the allocation cap (90)"]),
    ({"allocation_cap": "101"}, ["allocation cap (101) cannot be above the hard cap (100)"]),
    ({"hard_cap": "11"}, ["hard cap (11) cannot be below the 12 seats in use",
                          "allocation cap (90) cannot be above the hard cap (11)"]),
    ({"soft_cap": "5", "allocation_cap": "11"},
     ["allocation cap (11) cannot be below the 12 seats in use"]),
    ({"soft_cap": "-1"}, ["Enter a whole number from 0 to 1,000,000."]),
    ({"hard_cap": "1000001"}, ["Enter a whole number from 0 to 1,000,000."]),
    ({"allocation_cap": "ten"}, ["Enter a whole number from 0 to 1,000,000."]),
    ({"hard_cap": ""}, ["Enter a whole number from 0 to 1,000,000."]),
    ({"base_url": "ftp://x"}, ["Enter a full http:// or https:// address"]),
    ({"groups": "nextcloud-foggy\nno-such-group"}, ['There is no group "no-such-group"']),
])
def test_instance_edit_refuses_each_bad_cap_with_its_message(admin_client, catalog, db, caps,
                                                             field_words):
    iid = db.scalar("SELECT id FROM instances WHERE name = 'foggy'")
    seat(db, iid, 12)
    _, form = instance_form(admin_client, iid)
    form.update(caps)
    before = db.rows("SELECT * FROM instances ORDER BY id")
    groups = db.rows("SELECT * FROM instance_groups ORDER BY instance_id, group_id")
    r = admin_client.post_form(f"/admin/instances/edit/?id={iid}", form)
    assert r.status_code == 400
    text = text_of(r.text)
    assert "Nothing was saved" in text
    for words in field_words:
        assert words in text, (words, text[:800])
    assert 'aria-invalid="true"' in r.text
    for k, v in caps.items():  # what was typed is kept
        if k != "groups":
            assert f'value="{v}"' in r.text
    assert db.rows("SELECT * FROM instances ORDER BY id") == before
    assert db.rows("SELECT * FROM instance_groups ORDER BY instance_id, group_id") == groups
    assert audit_rows(db) == []


def test_instance_edit_conflict_and_forged_ids(admin_client, catalog, db):
    iid = db.scalar("SELECT id FROM instances WHERE name = 'foggy'")
    _, form = instance_form(admin_client, iid)
    seat(db, iid, 3)  # seats moving is not a conflict
    db.exec("UPDATE instances SET soft_cap = 10 WHERE id = ?", iid)  # another edit is
    form["hard_cap"] = "99"
    r = admin_client.post_form(f"/admin/instances/edit/?id={iid}", form)
    assert r.status_code == 409
    assert "changed by someone else" in text_of(r.text)
    assert db.scalar("SELECT hard_cap FROM instances WHERE id = ?", iid) == 100
    _, form = instance_form(admin_client, iid)
    seat(db, iid, 4)
    form["hard_cap"] = "99"
    assert admin_client.post_form(f"/admin/instances/edit/?id={iid}", form).status_code == 303
    for forged in ("0", "abc", "99999999", "-2", "9" * 25):
        assert admin_client.get("/admin/instances/edit/?id=" + forged).status_code == 404
        assert admin_client.post_form("/admin/instances/edit/?id=" + forged,
                                      form).status_code == 404


# --- groups -------------------------------------------------------------------------------------


def group_names(page):
    return re.findall(r'<tr><th scope="row">([^<]*)</th>', page)


def test_groups_list_search_and_pages(admin_client, catalog, db):
    r = admin_client.get("/admin/groups/")
    names = group_names(r.text)
    assert names == sorted(names) and "nextcloud-foggy" in names
    assert group_names(admin_client.get("/admin/groups/?q=CIRRUS").text) == ["nextcloud-cirrus"]
    assert group_names(admin_client.get("/admin/groups/?q=" + quote("%_")).text) == \
        ["100%_off&#39;s"]
    assert group_names(admin_client.get("/admin/groups/?q=" + quote("'")).text) == \
        ["100%_off&#39;s"]
    seen, url = [], "/admin/groups/?limit=1"
    while url:
        page = admin_client.get(url.replace("&amp;", "&")).text
        seen += group_names(page)
        m = re.search(r'href="([^"]+)" rel="next"', page)
        url = m and m.group(1)
    assert seen == names


# --- audit log page ---------------------------------------------------------------------------


def test_audit_page_lists_searches_and_pages(admin_client, catalog, db):
    page = admin_client.get("/admin/products/").text
    for slug in ("vault", "cloud"):
        fp = fp_of(page, catalog[slug])
        assert inline(admin_client, catalog[slug], fp, display_order="7",
                      is_active="on").status_code == 303
    r = admin_client.get("/admin/audit/")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "bob" in text and "product.update" in text and "catalog.apply" in text
    assert "display_order 20 → 7" in text
    for query, count in {"actor=bob": 2, "actor=nobody": 0, "action=product.": 2,
                         "action=product": 0, f"target=product:{catalog['vault']}": 1,
                         "action=catalog.apply": 1, "actor=" + quote("' OR 1=1 --"): 0}.items():
        r = admin_client.get("/admin/audit/?" + query)
        assert r.status_code == 200, query
        assert r.text.count('<tr class="audit-entry">') == count, query
    r = admin_client.get("/admin/audit/?limit=1")
    nxt = re.search(r'href="([^"]+)" rel="next"', r.text).group(1).replace("&amp;", "&")
    assert admin_client.get(nxt).status_code == 200
    for bad in ("after=abc", "limit=-1", "actor=" + "x" * 10240, "target=%00"):
        assert admin_client.get("/admin/audit/?" + bad).status_code in (200, 400), bad


def test_onboarding_sees_an_admin_edit_at_once(admin_app, admin_client, catalog, db):
    """The onboarding pages cache the catalog (domain/onboarding_cache.c) and reload it when
    catalog_version moves; an admin edit moves it in its own transaction."""
    from test_onboarding_steps import PLAN, step1
    shopper = admin_app.client()
    step1(shopper, "Ada")
    assert "Files and calendars" in shopper.get(PLAN).text  # the cache now holds Cloud
    _, form = edit_form(admin_client, catalog["cloud"])
    form["tagline"] = "Edited in the console"
    r = admin_client.post_form(f"/admin/products/edit/?id={catalog['cloud']}", form)
    assert r.status_code == 303
    page = shopper.get(PLAN).text
    assert "Edited in the console" in page and "Files and calendars" not in page
