"""Issue 12 item 6 in a real browser: an operator logs in to the admin console through the
Keycloak double as a member of usher-admins and works through it. Every shot() also runs
axe-core (WCAG 2.2 A/AA) on the page; screenshots go to test-artifacts/e2e/<test>/.

The journey is a list of steps (ADMIN_STEPS) run in order on one logged-in page, so the
console's other areas add theirs by appending a function `step_x(j)` to the list:
  - log in as the admin (first; the others need it)
  - retry a failed task from its page; retry another from the list after the confirmation
    page; the worker then runs both for real (they add addresses to the Mailgun double's list)
  - look at a failed Stripe event's payload and retry it
  - see a waiting seat among the instance assignments and "allocate now" once a cap allows
  - export the waitlist as CSV and read the downloaded file (header row, formula guard)
  - edit a product (its tagline) and see the change saved and audited
  - raise an instance's allocation cap (after a cap that breaks soft <= allocation <= hard is
    refused field by field), which lets the waiting seat above be allocated
  - run "Sync to Keycloak" on three users, one of whom Keycloak does not know: the result
    page reports two done and one failed with the error

Editing a product, retrying tasks, allocating a seat now (with the cap it needs) and the bulk
sync are done by keyboard alone (Tab, Enter, Space, arrows: AdminKeys), and every control the
keyboard lands on must show its focus (a focus-visible outline or shadow).
"""

import csv
import io
import json
from dataclasses import dataclass, field

from conftest import keycloak_login, now, wait_for, wait_for_text
from journeys import Keyboard

ADMIN = {"username": "ada", "password": "ada-e2e-pw", "email": "ada@usher.test",
         "firstName": "Ada", "lastName": "Lovelace"}
HOSTILE_EMAIL = "=hyperlink(1)@example.test"


# The element has the focus, matches :focus-visible, is on screen and is drawn with a focus
# indicator (an outline or a box-shadow).
FOCUS_SHOWN_JS = """e => {
  const s = getComputedStyle(e), r = e.getBoundingClientRect();
  return e === document.activeElement && e.matches(':focus-visible')
    && r.width > 0 && r.height > 0 && s.visibility !== 'hidden'
    && ((s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none');
}"""


class AdminKeys(Keyboard):
    """journeys.Keyboard for the console: its pages have more stops to Tab through (the
    navigation, tables of rows), each control reached must show its focus, and a <select> is
    set with the arrow keys."""

    def focus(self, locator, limit=300):
        super().focus(locator, limit)
        assert locator.evaluate(FOCUS_SHOWN_JS), \
            f"{locator} has the keyboard focus but does not show it"

    def choose(self, select, label):
        self.focus(select)
        self.page.keyboard.press("Home")
        for _ in range(40):
            if select.evaluate("e => e.options[e.selectedIndex].text.trim()") == label:
                return
            self.page.keyboard.press("ArrowDown")
        raise AssertionError(f"{select} has no option {label!r} the arrow keys reach")


@dataclass
class Journey:
    stack: object
    page: object
    shot: object
    notes: dict = field(default_factory=dict)  # what one step leaves for a later one

    @property
    def keys(self):
        return AdminKeys(self.page)

    def nav_link(self, label):
        return self.page.get_by_role("navigation", name="Admin sections").get_by_role(
            "link", name=label, exact=True)

    def nav(self, label):
        """Follows a section link of the admin navigation."""
        self.nav_link(label).click()

    def nav_by_keys(self, label):
        """The same by keyboard: Tab to the link, Enter."""
        self.keys.press(self.nav_link(label))

    def fits_320(self):
        """The page does not scroll sideways on a 320 px wide screen (tables scroll inside
        their own container)."""
        original = self.page.viewport_size
        self.page.set_viewport_size({"width": 320, "height": 700})
        try:
            wide = self.page.evaluate("() => document.documentElement.scrollWidth")
            culprits = self.page.evaluate(
                "() => [...document.querySelectorAll('body *')].filter(e => "
                "e.getBoundingClientRect().right > 321 && !(e.parentElement && "
                "e.parentElement.closest('.table-scroll, pre')))"
                ".slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + "
                "Math.round(e.getBoundingClientRect().right))")
            assert wide <= 320, f"{self.page.url} is {wide} px wide at 320 px: {culprits}"
        finally:
            self.page.set_viewport_size(original)


# --- seeding: what an operator finds when they open the console --------------------------

def seed(stack):
    db, t = stack.db, now()
    for i, email in enumerate(["early@example.test", HOSTILE_EMAIL, "late,comma@example.test"]):
        db.exec("INSERT INTO waitlist_entries (email, created_at) VALUES (?, ?)", email, t + i)
    ids = []
    for email in ("early@example.test", "late,comma@example.test"):
        db.exec("INSERT INTO tasks (name, args, state, attempts, max_attempts, run_at, "
                "created_at, updated_at, last_error) VALUES ('waitlist_add_member', ?, "
                "'failed', 4, 4, ?, ?, ?, 'mailgun: HTTP 503')", json.dumps({"email": email}),
                t, t, t)
        ids.append(db.scalar("SELECT max(id) FROM tasks"))
    payload = json.dumps({"id": "evt_e2e_failed", "type": "customer.created", "created": t,
                          "data": {"object": {"id": "cus_e2e", "note": "<b>not markup</b>"}}})
    db.exec("INSERT INTO stripe_events (event_id, type, created, payload, status, received_at, "
            "attempts, last_error) VALUES ('evt_e2e_failed', 'customer.created', ?, ?, "
            "'failed', ?, 11, 'keycloak: HTTP 503')", t, payload, t)
    # A customer waiting for a seat: the smallest instance of the catalog is full.
    product_id, instance_id = db.rows(
        "SELECT product_id, id FROM instances WHERE is_active ORDER BY id LIMIT 1")[0]
    db.exec("UPDATE instances SET soft_cap = 0, allocation_cap = 0 WHERE product_id = ?",
            product_id)
    db.exec("INSERT INTO users (username, email, date_joined) VALUES ('wendy', "
            "'wendy@example.test', ?)", t)
    wendy = db.scalar("SELECT id FROM users WHERE username = 'wendy'")
    db.exec("INSERT INTO instance_assignments (user_id, product_id, state, created_at) "
            "VALUES (?, ?, 'waiting_capacity', ?)", wendy, product_id, t)
    return {"tasks": ids, "product_id": product_id, "instance_id": instance_id}


# --- the steps -------------------------------------------------------------------------------

def step_log_in(j):
    page, stack = j.page, j.stack
    page.goto(stack.url + "/admin/")
    page.wait_for_selector("#kc-login")
    keycloak_login(page, stack, ADMIN["username"], ADMIN["password"])
    page.wait_for_url(stack.url + "/admin/")
    wait_for_text(page, "Admin console")
    j.shot("admin-overview")


def step_retry_failed_task(j):
    page, stack = j.page, j.stack
    first, second = j.notes["tasks"]
    keys = j.keys
    j.nav_by_keys("Tasks")
    keys.choose(page.get_by_label("State"), "failed")
    keys.press(page.get_by_role("button", name="Filter"))
    page.wait_for_url("**/admin/tasks/?state=failed**")
    j.shot("tasks-filtered-to-failed")
    j.fits_320()

    keys.press(page.get_by_role("link", name=str(first), exact=True))
    wait_for_text(page, "mailgun: HTTP 503")
    j.shot("task-that-failed")
    j.fits_320()
    keys.press(page.get_by_role("button", name="Retry this task"))
    wait_for_text(page, f"Task {first} is queued to run now.")
    j.shot("task-retried")

    # The other one from the list: a bulk action asks first.
    j.nav_by_keys("Tasks")
    keys.choose(page.get_by_label("State"), "failed")
    keys.press(page.get_by_role("button", name="Filter"))
    page.wait_for_url("**/admin/tasks/?state=failed**")
    keys.check(page.get_by_label(f"Select task {second}"))
    keys.press(page.get_by_role("button", name="Retry selected failed tasks…"))
    wait_for_text(page, "Retry 1 task?")
    j.shot("bulk-retry-confirmation")
    keys.press(page.get_by_role("button", name="Retry 1 task"))
    wait_for_text(page, "1 queued to run now, 0 left alone.")
    j.shot("bulk-retry-results")

    # The worker really runs them now: both addresses reach the mailing list.
    stack.wait_task_done("waitlist_add_member", count=2)
    page.goto(f"{stack.url}/admin/tasks/{first}/")
    wait_for_text(page, "done")
    j.shot("task-done")
    assert stack.db.scalar("SELECT count(*) FROM audit_log WHERE action = 'task.retry' "
                           "AND actor = 'ada'") == 2


def step_retry_stripe_event(j):
    page, stack = j.page, j.stack
    j.nav("Stripe events")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    wait_for_text(page, "evt_e2e_failed")
    j.shot("stripe-events-failed")
    j.fits_320()
    page.get_by_role("link", name="evt_e2e_failed").click()
    wait_for_text(page, "keycloak: HTTP 503")
    assert "<b>not markup</b>" in page.locator("pre").inner_text()  # shown as text
    j.shot("stripe-event")
    j.fits_320()
    page.get_by_role("button", name="Retry this event").click()
    wait_for_text(page, "Event evt_e2e_failed is queued for processing again.")
    j.shot("stripe-event-retried")
    # An event type Usher does not handle is recorded as ignored by the processing.
    wait_for(lambda: stack.db.scalar("SELECT status FROM stripe_events WHERE event_id = "
                                     "'evt_e2e_failed'") == "ignored",
             what="the retried event's processing")


def step_allocate_waiting_seat(j):
    page, stack = j.page, j.stack
    keys = j.keys
    allocate = page.get_by_role("button", name="Allocate now: a seat for wendy", exact=False)
    j.nav_by_keys("Assignments")
    state = page.get_by_label("State")
    keys.choose(state, state.locator("option[value=waiting_capacity]").inner_text().strip())
    keys.press(page.get_by_role("button", name="Filter"))
    wait_for_text(page, "wendy@example.test")
    j.shot("waiting-seat")
    j.fits_320()
    keys.press(allocate)
    wait_for_text(page, "keeps waiting")
    j.shot("allocate-no-capacity")
    # Capacity frees up: the operator raises the instance's allocation cap.
    raise_allocation_cap(j)
    j.nav_by_keys("Assignments")
    keys.press(allocate)
    wait_for_text(page, "wendy now has a seat on")
    j.shot("allocated")


def raise_allocation_cap(j):
    page, stack = j.page, j.stack
    instance_id = j.notes["instance_id"]
    hard = stack.db.scalar("SELECT hard_cap FROM instances WHERE id = ?", instance_id)
    keys = j.keys
    j.nav_by_keys("Instances")
    keys.press(page.locator(f'a[href="/admin/instances/edit/?id={instance_id}"]'))
    wait_for_text(page, "Capacity")
    # A soft cap above the allocation cap breaks soft <= allocation <= hard: refused per field.
    keys.fill(page.get_by_label("Soft cap (preferred fill)"), str(hard))
    keys.press(page.get_by_role("button", name="Save instance"))
    page.locator("#e-soft, #e-alloc").first.wait_for()
    j.shot("instance-cap-refused")
    assert stack.db.scalar("SELECT soft_cap FROM instances WHERE id = ?", instance_id) == 0
    keys.fill(page.get_by_label("Soft cap (preferred fill)"), "0")
    keys.fill(page.get_by_label("Allocation cap (automatic allocation stops here)"), str(hard))
    keys.press(page.get_by_role("button", name="Save instance"))
    wait_for_text(page, "Saved the instance.")
    j.shot("instance-cap-raised")
    assert stack.db.scalar("SELECT allocation_cap FROM instances WHERE id = ?",
                           instance_id) == hard
    assert stack.db.scalar("SELECT count(*) FROM audit_log WHERE action = 'instance.update' "
                           "AND actor = 'ada'") == 1


def step_export_waitlist(j):
    page = j.page
    j.nav("Waitlist")
    wait_for_text(page, HOSTILE_EMAIL)
    j.shot("waitlist")
    j.fits_320()
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("waitlist-")
    assert download.suggested_filename.endswith(".csv")
    text = open(download.path(), encoding="utf-8", newline="").read()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["email", "joined_at", "synced_to_mailing_list_at"]
    emails = [r[0] for r in rows[1:]]
    assert emails == ["early@example.test", "'" + HOSTILE_EMAIL, "late,comma@example.test"]
    # The two retried tasks put their addresses on the mailing list.
    synced = {r[0]: r[2] for r in rows[1:]}
    assert synced["early@example.test"] and synced["late,comma@example.test"]
    assert synced["'" + HOSTILE_EMAIL] == ""


def step_edit_product(j):
    page, stack = j.page, j.stack
    keys = j.keys
    j.nav_by_keys("Products")
    wait_for_text(page, "Nextcloud")
    j.shot("products")
    j.fits_320()
    keys.press(page.get_by_role("link", name="Nextcloud", exact=True))
    wait_for_text(page, "Basics")
    keys.fill(page.get_by_label("Tagline"), "Files, calendars & contacts — edited by ada")
    j.shot("product-edit")
    keys.press(page.get_by_role("button", name="Save product"))
    wait_for_text(page, "Saved the product.")
    j.shot("product-saved")
    assert stack.db.scalar("SELECT tagline FROM products WHERE name = 'Nextcloud'") == \
        "Files, calendars & contacts — edited by ada"
    assert stack.db.scalar("SELECT count(*) FROM audit_log WHERE action = 'product.update' "
                           "AND actor = 'ada'") == 1


def step_bulk_sync_three_users_one_failing(j):
    page, stack = j.page, j.stack
    t = now()
    for name in ("uma", "vic", "xena"):
        known = name != "xena"  # xena's Keycloak id is one Keycloak does not have
        kc_id = stack.kc.add_user(name, email=f"{name}@example.test")["id"] if known else \
            "00000000-0000-4000-8000-00000000dead"
        stack.db.exec("INSERT INTO users (username, email, date_joined, keycloak_id) "
                      "VALUES (?, ?, ?, ?)", name, f"{name}@example.test", t, kc_id)
    keys = j.keys
    j.nav_by_keys("Users")
    wait_for_text(page, "xena@example.test")
    for name in ("uma", "vic", "xena"):
        keys.check(page.get_by_label(f"Select {name}", exact=True))
    keys.choose(page.get_by_label("Action on the ticked users"), "Sync to Keycloak")
    j.shot("users-ticked")
    keys.press(page.get_by_role("button", name="Go…"))
    wait_for_text(page, "Sync to Keycloak: 3 users?")
    j.shot("bulk-sync-confirmation")
    keys.press(page.get_by_role("button", name="Sync to Keycloak (3)"))
    # The result page reloads itself while the worker runs the three tasks.
    wait_for_text(page, "3 users: 2 done, 1 failed.", timeout_ms=60_000)
    row = page.locator("tr", has_text="xena")
    assert "failed" in row.inner_text() and row.locator("td").nth(2).inner_text().strip()
    j.shot("bulk-sync-results")


# The console's areas, in the order an operator might visit them; a new area appends its step.
ADMIN_STEPS = [
    step_log_in,
    step_edit_product,
    step_retry_failed_task,
    step_retry_stripe_event,
    step_allocate_waiting_seat,  # includes raising an instance's allocation cap
    step_export_waitlist,
    step_bulk_sync_three_users_one_failing,
]


def test_admin_journey(stack, page, shot):
    stack.kc.add_user(ADMIN["username"], password=ADMIN["password"], email=ADMIN["email"],
                      firstName=ADMIN["firstName"], lastName=ADMIN["lastName"],
                      groups=["usher-admins"])
    j = Journey(stack, page, shot)
    j.notes.update(seed(stack))
    for step in ADMIN_STEPS:
        step(j)
