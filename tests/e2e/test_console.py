"""The console in a real browser: what marketers, ops and support people see and do.

Every test drives Debian's Chromium through the pages a person uses (login form, sidebar,
forms, actions, import) and asserts on what the page shows, then on the database.
"""

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from messaging.contacts import create_contact
from messaging.models import AuditEntry, Contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONTACT_ADD = "/admin/messaging/contact/add/"
CONTACT_LIST = "/admin/messaging/contact/"
CONTACT_IMPORT = "/admin/messaging/contact/import/"
AUDIT_LIST = "/admin/messaging/auditentry/"


# --- helpers ---------------------------------------------------------------------------
def sidebar(page: Page):
    return page.locator("#nav-sidebar")


def open_sidebar_group(page: Page, title: str) -> None:
    """Sidebar groups are collapsed until clicked (Alpine `navigationOpen`)."""
    sidebar(page).locator("h2", has_text=title).click()


def sidebar_link(page: Page, href: str):
    return sidebar(page).locator(f'a[href="{href}"]')


def sidebar_item_title(page: Page, href: str):
    """The label of a sidebar item, without its icon's ligature text."""
    return sidebar_link(page, href).locator("span").last


def fill_contact_form(page: Page, **values: str) -> None:
    for name, value in values.items():
        if name == "timezone":
            pick_time_zone(page, value)
        else:
            page.fill(f"#contact_form [name={name}]", value)


def pick_time_zone(page: Page, zone: str) -> None:
    """The time zone is a searchable list (select2): open it, type part of the name, pick it."""
    page.locator("#contact_form select[name=timezone] + .select2 .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(zone.split("/")[-1])
    page.locator(".select2-results__option", has_text=re.compile(f"^{re.escape(zone)}$")).click()


def save(page: Page) -> None:
    page.click('button[name="_save"]')


def run_changelist_action(page: Page, contact: Contact, action_label: str) -> None:
    page.locator(f'input[name="_selected_action"][value="{contact.pk}"]').check()
    page.select_option("#changelist-actions select[name=action]", label=action_label)
    page.get_by_role("button", name="Run").click()


def csv_file(tmp_path, name: str, *rows: str):
    path = tmp_path / name
    path.write_text("email,phone,first_name,timezone\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def upload_for_import(page: Page, live_server, path) -> None:
    page.goto(live_server.url + CONTACT_LIST)
    page.locator(f"a[href='{CONTACT_IMPORT}']").click()  # the sidebar also has "Import jobs"
    page.wait_for_url(f"{live_server.url}{CONTACT_IMPORT}")
    page.set_input_files("input[name=import_file]", str(path))
    page.get_by_label("Legal basis for these subscriptions").select_option("contract")  # no topic chosen here
    page.get_by_role("button", name="Import").click()


# --- 1. dashboard ----------------------------------------------------------------------
def test_dashboard_shows_the_real_number_of_contacts(admin_user, console_login):
    # Given three contacts
    for email in ("ada@example.com", "grace@example.com", "linus@example.com"):
        create_contact(actor=None, email=email)

    # When the admin logs in through the login form
    page = console_login(admin_user)

    # Then the dashboard shows its four KPI cards, the first one counting the contacts
    expect(page.get_by_role("heading", name="Today in Mailroom")).to_be_visible()
    expect(page.get_by_test_id("kpi-value")).to_have_count(4)
    contacts_card = page.get_by_test_id("dashboard").locator("div.grid > div").filter(has=page.get_by_text("Contacts", exact=True))
    expect(contacts_card.get_by_test_id("kpi-value")).to_have_text("3")
    expect(contacts_card).to_contain_text("3 new today")


# --- 2-3. contact form -------------------------------------------------------------------
def test_marketer_adds_a_contact_and_it_is_stored_normalised_and_audited(marketer, console_login, live_server):
    page = console_login(marketer)

    # When the marketer fills the add form with untidy input and saves
    page.goto(live_server.url + CONTACT_LIST)
    page.locator(f'a.addlink[href="{CONTACT_ADD}"]').click()
    page.wait_for_url(f"{live_server.url}{CONTACT_ADD}")
    fill_contact_form(page, email="  Grace.Hopper@Example.COM ", phone="06 12 34 56 78", first_name="Grace", timezone="Europe/Paris")
    save(page)

    # Then the change list shows the new contact, with its normalised address and number
    page.wait_for_url(f"{live_server.url}{CONTACT_LIST}")
    expect(page.get_by_text("was added successfully")).to_be_visible()
    row = page.locator("#result_list tbody tr", has_text="grace.hopper@example.com")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("+33612345678")
    expect(row).to_contain_text("Europe/Paris")

    # And the database holds one normalised contact, with an audit entry naming the marketer
    contact = Contact.objects.get()
    assert contact.email == "grace.hopper@example.com"
    assert contact.phone == "+33612345678"
    assert contact.timezone == "Europe/Paris"
    assert contact.first_name == "Grace"
    entry = AuditEntry.objects.get(verb="created", target_type="messaging.contact", target_id=str(contact.pk))
    assert entry.actor == marketer


def test_invalid_contact_shows_every_error_and_creates_nothing(marketer, console_login, live_server):
    page = console_login(marketer)

    # When the form is submitted with a malformed email, a too-short phone and an unknown zone
    page.goto(live_server.url + CONTACT_ADD)
    fill_contact_form(page, email="not-an-email", phone="12")
    # (the time zone is picked from a list: an unknown zone cannot be typed; a crafted post
    # is refused by the form, tests/messaging/test_contact_timeline.py)
    expect(page.locator('#contact_form select[name=timezone] option[value="Mars/Olympus"]')).to_have_count(0)
    save(page)

    # Then the form comes back with one message per bad field, and nothing was saved
    expect(page).to_have_url(f"{live_server.url}{CONTACT_ADD}")
    form = page.locator("#contact_form")
    expect(form.get_by_text("Please correct the errors below.")).to_be_visible()
    # the messages come from messaging/contact_fields.py, the one place the rules live
    expect(form.get_by_text(re.compile(r"is not a valid email address"))).to_be_visible()
    expect(form.get_by_text(re.compile(r"“12” is not a (valid )?phone number"))).to_be_visible()
    assert not Contact.objects.exists()


def test_duplicate_email_is_refused_in_the_form(marketer, contact, console_login, live_server):
    # Given ada@example.com already exists
    page = console_login(marketer)

    # When someone adds her again, typed differently
    page.goto(live_server.url + CONTACT_ADD)
    fill_contact_form(page, email="ADA@Example.com")
    save(page)

    # Then the form says the address is taken and there is still one Ada
    expect(page).to_have_url(f"{live_server.url}{CONTACT_ADD}")
    expect(page.locator("#contact_form").get_by_text("Contact with this Email already exists.")).to_be_visible()
    assert Contact.objects.filter(email="ada@example.com").count() == 1
    assert Contact.objects.count() == 1


# --- 4. language ---------------------------------------------------------------------------
def test_user_switches_the_console_to_french_from_the_user_menu(admin_user, console_login):
    page = console_login(admin_user)
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # When the user opens the menu at the bottom of the sidebar and picks French
    sidebar(page).get_by_text(admin_user.email).click()
    page.get_by_role("button", name=re.compile(r"^\s*(français|French)", re.IGNORECASE)).click()

    # Then the console comes back in French: Django's own strings and ours
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    sidebar(page).get_by_text(admin_user.email).click()
    expect(page.get_by_role("button", name="Déconnexion")).to_be_visible()
    expect(sidebar(page).get_by_role("link", name="Tableau de bord")).to_have_attribute("href", "/admin/")
    expect(page.get_by_role("heading", name="Aujourd'hui dans Mailroom")).to_be_visible()
    open_sidebar_group(page, "Audience")
    expect(sidebar_item_title(page, CONTACT_LIST)).to_have_text("Contacts")


# --- 5. roles --------------------------------------------------------------------------------
def test_marketer_reaches_contacts_but_not_the_audit_trail(marketer, contact, console_login, live_server):
    page = console_login(marketer)

    # Contacts is in the sidebar and opens the list
    open_sidebar_group(page, "Audience")
    sidebar_link(page, CONTACT_LIST).click()
    page.wait_for_url(f"{live_server.url}{CONTACT_LIST}")
    expect(page.locator("#result_list")).to_contain_text("ada@example.com")

    # The audit trail is neither offered nor reachable by URL
    expect(sidebar_link(page, AUDIT_LIST)).to_have_count(0)
    expect(sidebar(page).get_by_text("Audit trail")).to_have_count(0)
    response = page.goto(live_server.url + AUDIT_LIST)
    assert response.status == 403
    expect(page.get_by_text("403 Forbidden")).to_be_visible()


def test_ops_opens_the_audit_trail_from_the_sidebar(ops, console_login, live_server):
    create_contact(actor=ops, email="ops-made@example.com")
    page = console_login(ops)

    open_sidebar_group(page, "Settings")
    sidebar_link(page, AUDIT_LIST).click()
    page.wait_for_url(f"{live_server.url}{AUDIT_LIST}")
    row = page.locator("#result_list tbody tr", has_text="ops-made@example.com")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("created")
    expect(row).to_contain_text("ops")


def test_support_edits_a_contact_but_cannot_add_one(support, contact, console_login, live_server):
    page = console_login(support)

    # The list shows the contact but no add button
    page.goto(live_server.url + CONTACT_LIST)
    expect(page.locator("#result_list")).to_contain_text("ada@example.com")
    expect(page.locator("a.addlink")).to_have_count(0)
    expect(page.get_by_title("Add contact")).to_have_count(0)

    # The contact's change page opens with an editable form and a save button
    page.locator("#result_list").get_by_role("link", name="ada@example.com").click()
    page.wait_for_url(f"{live_server.url}{CONTACT_LIST}{contact.pk}/change/")
    expect(page.locator("#contact_form input[name=email]")).to_have_value("ada@example.com")
    expect(page.locator("a.addlink")).to_have_count(0)
    expect(page.get_by_title("Add contact")).to_have_count(0)

    # And saving a change works and is audited under their name
    fill_contact_form(page, first_name="Augusta")
    save(page)
    page.wait_for_url(f"{live_server.url}{CONTACT_LIST}")
    expect(page.get_by_text("was changed successfully")).to_be_visible()
    contact.refresh_from_db()
    assert contact.first_name == "Augusta"
    entry = AuditEntry.objects.get(verb="updated", target_id=str(contact.pk))
    assert entry.actor == support
    assert entry.changes == {"first_name": {"before": "Ada", "after": "Augusta"}}


# --- 6. GDPR erasure ----------------------------------------------------------------------------
def test_gdpr_erase_asks_for_confirmation_then_erases(admin_user, contact, console_login, live_server):
    page = console_login(admin_user)
    page.goto(live_server.url + CONTACT_LIST)

    # When the admin runs "Erase personal data" on Ada
    run_changelist_action(page, contact, "Erase personal data (GDPR)")

    # Then a confirmation page warns that it cannot be undone; nothing happened yet
    expect(page.get_by_role("alert")).to_contain_text("cannot be recovered")
    expect(page.get_by_text("ada@example.com")).to_be_visible()
    contact.refresh_from_db()
    assert contact.email == "ada@example.com" and contact.erased_at is None

    # When they confirm, the list says so and the contact is erased
    page.get_by_test_id("confirm").click()
    page.wait_for_url(f"{live_server.url}{CONTACT_LIST}")
    expect(page.get_by_text("1 contact erased.")).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text(f"Erased contact #{contact.pk}")
    expect(page.locator("#result_list")).not_to_contain_text("ada@example.com")
    contact.refresh_from_db()
    assert contact.email is None
    assert contact.first_name == ""
    assert contact.erased_at is not None
    assert AuditEntry.objects.filter(verb="erased", actor=admin_user, target_id=str(contact.pk)).exists()


def test_gdpr_erase_can_be_called_off(admin_user, contact, console_login, live_server):
    page = console_login(admin_user)
    page.goto(live_server.url + CONTACT_LIST)
    run_changelist_action(page, contact, "Erase personal data (GDPR)")
    expect(page.get_by_test_id("confirm")).to_be_visible()

    # When they choose to go back instead
    page.get_by_role("link", name="No, take me back").click()

    # Then they are on the list and Ada is untouched
    page.wait_for_url(f"{live_server.url}{CONTACT_LIST}")
    expect(page.locator("#result_list")).to_contain_text("ada@example.com")
    contact.refresh_from_db()
    assert contact.email == "ada@example.com"
    assert contact.erased_at is None
    assert not AuditEntry.objects.filter(verb="erased").exists()


# --- 7. CSV import --------------------------------------------------------------------------------
def test_csv_import_with_a_bad_row_reports_it_and_imports_nothing(admin_user, console_login, live_server, tmp_path):
    path = csv_file(
        tmp_path,
        "contacts.csv",
        "alan@example.com,06 12 34 56 78,Alan,Europe/Paris",
        "not-an-email,,Bad,UTC",
        "edsger@example.com,,Edsger,Europe/Amsterdam",
    )
    page = console_login(admin_user)

    # When the file is uploaded through the Import button
    upload_for_import(page, live_server, path)

    # Then the import job's page names the bad line and its problem, and nothing is imported
    expect(page.get_by_text("Nothing imported: 1 bad row.").first).to_be_visible()
    expect(page.locator("#content")).to_contain_text("line 3: email: “not-an-email” is not a valid email address")
    assert not Contact.objects.exists()
    page.goto(live_server.url + CONTACT_LIST)
    expect(page.locator("#content")).not_to_contain_text("alan@example.com")
    expect(page.locator("#content")).not_to_contain_text("edsger@example.com")


def test_csv_import_of_good_rows_creates_the_contacts(admin_user, console_login, live_server, tmp_path):
    path = csv_file(
        tmp_path,
        "contacts.csv",
        "Alan@Example.com,06 12 34 56 78,Alan,Europe/Paris",
        "edsger@example.com,,Edsger,Europe/Amsterdam",
    )
    page = console_login(admin_user)

    # When the file is uploaded, the small file is imported at once and its job says so
    upload_for_import(page, live_server, path)
    expect(page.get_by_text("2 contacts created, 0 updated, 0 subscriptions.").first).to_be_visible()
    page.goto(live_server.url + CONTACT_LIST)
    expect(page.locator("#result_list")).to_contain_text("alan@example.com")
    expect(page.locator("#result_list")).to_contain_text("edsger@example.com")
    alan = Contact.objects.get(email="alan@example.com")
    assert alan.phone == "+33612345678"
    assert alan.timezone == "Europe/Paris"
    assert alan.first_name == "Alan"
    assert Contact.objects.get(email="edsger@example.com").timezone == "Europe/Amsterdam"
    assert Contact.objects.count() == 2
    assert AuditEntry.objects.filter(verb="imported", actor=admin_user, target_type="messaging.contact").count() == 1


# --- 8. unknown pages ------------------------------------------------------------------------------
def test_an_unknown_console_page_is_a_404_inside_the_console(support: User, console_login, live_server):
    page = console_login(support)
    response = page.goto(live_server.url + "/admin/coming/nope/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()
