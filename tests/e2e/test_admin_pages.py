"""The admin console's catalog pages in Chromium (issue 12): an admin logs in, and every page
of the foundation and of products, prices, instances, groups and the audit log passes axe-core
(WCAG 2.2 A/AA, through shot()), fits 320, 390 and 1280 px without scrolling sideways (tables
scroll inside their own box) and shows the keyboard focus. The product's inline flags and an
instance cap are changed through the pages; a refused cap shows its message next to the
field. Screenshots in test-artifacts/e2e/<test>/."""

from conftest import keycloak_login, wait_for_text
from test_login_dashboard import ADMIN, add_keycloak_user
from test_pages_layout import check_page

WIDTHS = (320, 390, 1280)


def visit(page, shot, stack, path, name):
    page.goto(stack.url + path)
    shot(name)
    for width in WIDTHS:
        check_page(page, shot, path, width)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_admin_catalog_pages_are_accessible_and_work(stack, page, shot):
    add_keycloak_user(stack, ADMIN, groups=["usher-admins"])
    page.goto(stack.url + "/admin/")
    page.wait_for_selector("#kc-login")
    keycloak_login(page, stack, ADMIN["username"], ADMIN["password"])
    page.wait_for_url(stack.url + "/admin/")
    wait_for_text(page, "Admin console")
    shot("admin-index")
    for width in WIDTHS:
        check_page(page, shot, "/admin/", width)
    page.set_viewport_size({"width": 1280, "height": 900})

    visit(page, shot, stack, "/admin/products/", "products")
    # The inline form of the first row: feature it and save.
    row = page.locator("tbody tr").first
    name = row.locator("th a").inner_text()
    row.locator("input[name=is_featured]").set_checked(True)
    row.locator("button", has_text="Save").click()
    wait_for_text(page, "Saved the product's order and flags.")
    shot("products-inline-saved")

    page.get_by_role("link", name=name, exact=True).click()
    wait_for_text(page, "Basics")
    shot("product-edit")
    visit(page, shot, stack, page.url.replace(stack.url, ""), "product-edit")

    visit(page, shot, stack, "/admin/prices/", "prices")
    visit(page, shot, stack, "/admin/groups/", "groups")
    visit(page, shot, stack, "/admin/instances/", "instances")
    page.locator("tbody tr th a").first.click()
    wait_for_text(page, "Capacity")
    page.fill("#f-soft", "95")
    page.fill("#f-alloc", "90")
    page.get_by_role("button", name="Save instance").click()
    wait_for_text(page, "cannot be above the allocation cap")
    assert page.locator("#f-soft").get_attribute("aria-invalid") == "true"
    shot("instance-cap-refused")
    page.fill("#f-soft", "60")
    page.get_by_role("button", name="Save instance").click()
    wait_for_text(page, "Saved the instance.")
    shot("instance-saved")
    visit(page, shot, stack, page.url.replace(stack.url, ""), "instance-edit")

    visit(page, shot, stack, "/admin/audit/", "audit")
    wait_for_text(page, "instance.update")
    visit(page, shot, stack, "/admin/products/?after=forged", "bad-cursor")
