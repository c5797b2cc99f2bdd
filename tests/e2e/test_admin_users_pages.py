"""The admin console's users pages in a real browser (issue 12 items 3 and 6): an admin logs in
through the Keycloak double, searches the list, opens a user, ticks three users and runs "Sync
to Keycloak" — one linked user succeeds, one whose Keycloak account is gone fails with
Keycloak's answer, one deleted meanwhile is "no such user" — and the result page refreshes
itself until every task has run. Every step is screenshotted and checked with axe-core (shot);
the list is also checked at 320 px for sideways scrolling. Screenshots in
test-artifacts/e2e/<test>/."""

from conftest import keycloak_login, now, wait_for_text

ADMIN = {"username": "ada", "password": "ada-e2e-pw", "email": "ada@usher.test",
         "firstName": "Ada", "lastName": "Lovelace"}


def seed_users(stack):
    kc, db = stack.kc, stack.db
    linked = kc.add_user("linda", email="linda@example.test", firstName="Linda")
    t = now()
    for username, kc_id, status in [("linda", linked["id"], "active"),
                                    ("ghost", "00000000-0000-4000-8000-00000000dead", "active"),
                                    ("leaver", None, "canceled")]:
        db.exec("INSERT INTO users (username, email, keycloak_id, subscription_status, "
                "stripe_customer_id, date_joined) VALUES (?, ?, ?, ?, ?, ?)",
                username, f"{username}@example.test", kc_id, status, "cus_E2e" + username, t)
    return {u: db.scalar("SELECT id FROM users WHERE username = ?", u)
            for u in ("linda", "ghost", "leaver")}


def test_admin_searches_opens_a_user_and_runs_a_bulk_sync(stack, page, shot):
    stack.kc.add_user(ADMIN["username"], password=ADMIN["password"], email=ADMIN["email"],
                      firstName=ADMIN["firstName"], lastName=ADMIN["lastName"],
                      groups=["usher-admins"])
    ids = seed_users(stack)

    page.goto(stack.url + "/admin/users/")
    page.wait_for_selector("#kc-login")
    keycloak_login(page, stack, ADMIN["username"], ADMIN["password"])
    page.wait_for_url(stack.url + "/admin/users/")
    wait_for_text(page, "linda@example.test")
    shot("users-list")

    page.set_viewport_size({"width": 320, "height": 800})
    assert page.evaluate("() => document.documentElement.scrollWidth <= "
                         "document.documentElement.clientWidth"), page.evaluate(
        "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
        ".right > document.documentElement.clientWidth + 1).slice(0, 2).map(e => e.tagName + "
        "'.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))"
        ".concat((() => { const r = []; let e = document.querySelector('table');"
        " while (e) { r.push(e.tagName + '.' + e.className + ' ' + e.clientWidth + '/' + "
        "e.scrollWidth); e = e.parentElement; } return r; })())")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_label("Search").fill("linda")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/admin/users/?q=linda*")
    assert page.locator('input[name="ids"]').count() == 1
    shot("users-search")

    page.get_by_role("link", name="linda", exact=True).click()
    page.wait_for_url(stack.url + f"/admin/users/{ids['linda']}/")
    wait_for_text(page, "Subscription items")
    shot("user-page")

    page.goto(stack.url + "/admin/users/")
    for name in ("linda", "ghost", "leaver"):
        page.get_by_label(f"Select {name}").check()
    page.get_by_label("Action on the ticked users").select_option("sync_keycloak")
    page.get_by_role("button", name="Go…").click()
    wait_for_text(page, "Sync to Keycloak: 3 users?")
    shot("bulk-confirm")

    stack.db.exec("DELETE FROM users WHERE id = ?", ids["leaver"])
    page.get_by_role("button", name="Sync to Keycloak (3)").click()
    page.wait_for_url("**/admin/users/bulk/*/")
    # static/admin_users.js reloads the page until no task is pending.
    wait_for_text(page, "3 users: 1 done, 2 failed.")
    shot("bulk-result")
    rows = {r.locator("td").nth(0).inner_text(): (r.locator("td").nth(1).inner_text(),
                                                   r.locator("td").nth(2).inner_text())
            for r in page.locator("tbody tr").all()}
    assert rows["linda"] == ("done", "")
    assert rows["ghost"][0] == "failed" and rows["ghost"][1]
    assert rows[f"#{ids['leaver']} (no such user)"] == ("failed", "no such user")
