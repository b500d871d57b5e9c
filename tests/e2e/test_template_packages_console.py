"""Template packages and the end of a template, in a real browser, as a marketer uses them:
export a template (both its languages) with "Export as zip" on the list, import it under a new
key (checked first: the check says what would change and stores nothing), see the imported
template's languages in the editor; a broken zip gets a clear error and stores nothing; a
template never sent is deleted after a confirmation, a sent one can only be archived."""

import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.models import AuditEntry, Template, TemplateVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/messaging/template/"
IMPORT = "/admin/messaging/template/import/"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


def make_template(key: str, locale: str, name: str, subject: str, body: str) -> Template:
    template = create_template(actor=None, key=key, name=name, locale=locale, category="promotion")
    version = save_template_version(actor=None, template=template, body_format="html", subject=subject, body=body, text_body=body)
    activate_template_version(actor=None, version=version)
    return Template.objects.get(pk=template.pk)


@pytest.fixture
def welcome(db) -> list[Template]:
    return [
        make_template("welcome", "en", "Welcome", "Welcome aboard", "<p>Hello {{ contact.first_name }}</p>"),
        make_template("welcome", "fr", "Bienvenue", "Bienvenue à bord", "<p>Bonjour {{ contact.first_name }}</p>"),
    ]


def open_templates(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/")
    sidebar = page.locator("#nav-sidebar")
    sidebar.locator("h2", has_text="Content").click()
    sidebar.locator(f'a[href="{LIST}"]').click()
    page.wait_for_url(f"{live_server.url}{LIST}")


def run_action(page: Page, label: str, *rows: str) -> None:
    for text in rows:
        page.locator("#result_list tbody tr", has_text=text).locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label=label)
    page.get_by_role("button", name="Run").click()


def renamed(package: bytes, old: str, new: str, name: str) -> bytes:
    """What a person does with the exported files: the folder and the manifest get the new key."""
    source = zipfile.ZipFile(io.BytesIO(package))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info in source.infolist():
            text = source.read(info).decode()
            if info.filename.endswith("manifest.json"):
                manifest = json.loads(text)
                text = json.dumps(manifest | {"key": new, "name": name})
            archive.writestr(info.filename.replace(f"{old}/", f"{new}/", 1), text)
    return buffer.getvalue()


def check_package(page: Page, live_server, path: Path) -> None:
    page.goto(f"{live_server.url}{LIST}")
    page.get_by_role("link", name="Import templates").click()
    page.wait_for_url(f"{live_server.url}{IMPORT}")
    page.get_by_label("Template package (zip)").set_input_files(str(path))
    page.get_by_role("button", name="Check the package").click()


def test_a_marketer_exports_a_template_and_imports_it_under_a_new_key(live_server, console_login, marketer, welcome, page: Page, tmp_path):
    console_login(marketer)
    open_templates(page, live_server)
    # when the marketer exports the welcome template (both languages) from the list
    with page.expect_download() as download:
        run_action(page, "Export as zip", "Bienvenue")
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.name == "welcome.zip"
    files = zipfile.ZipFile(exported).namelist()
    assert sorted(files) == ["welcome/en.html", "welcome/en.txt", "welcome/fr.html", "welcome/fr.txt", "welcome/manifest.json"]

    # and imports it under a new key: the check lists what would happen and stores nothing
    fresh = tmp_path / "welcome-back.zip"
    fresh.write_bytes(renamed(exported.read_bytes(), "welcome", "welcome-back", "Welcome back"))
    before = (Template.objects.count(), TemplateVersion.objects.count(), AuditEntry.objects.count())
    check_package(page, live_server, fresh)
    preview = page.get_by_test_id("import-preview")
    expect(preview.locator("tbody tr")).to_have_count(2)
    expect(preview.locator("tbody tr").nth(0)).to_contain_text("welcome-back")
    expect(preview.locator("tbody tr").nth(0)).to_contain_text("new template")
    expect(preview.locator("tbody tr").nth(1)).to_contain_text("fr")
    expect(page.get_by_test_id("import-dry-run")).to_contain_text("Nothing has been imported yet")
    assert (Template.objects.count(), TemplateVersion.objects.count(), AuditEntry.objects.count()) == before
    assert not Template.objects.filter(key="welcome-back").exists()

    # when they confirm, then both languages are created, active, and the list says so
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url(f"{live_server.url}{LIST}")
    expect(page.get_by_text("Imported: 2 template(s) created, 0 new version(s), 0 unchanged.")).to_be_visible()
    imported = Template.objects.filter(key="welcome-back").order_by("locale")
    assert [(t.locale, t.active_version.subject) for t in imported] == [("en", "Welcome aboard"), ("fr", "Bienvenue à bord")]
    assert Template.objects.filter(key="welcome").count() == 2  # the original is untouched
    # and the imported template's editor offers its other language
    english = imported.get(locale="en")
    page.locator("#result_list tbody tr", has_text="welcome-back").filter(has_text="en").first.get_by_role(
        "link", name="Open editor"
    ).click()
    page.wait_for_url(f"{live_server.url}{LIST}{english.pk}/editor/")
    expect(page.get_by_role("heading", name="Welcome · welcome-back · EN")).to_be_visible()
    page.get_by_role("link", name="FR", exact=True).click()
    expect(page.get_by_role("heading", name="Bienvenue · welcome-back · FR")).to_be_visible()


def no_manifest() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("promo/en.html", "---\nsubject: Hi\n---\n<p>Hi</p>\n")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("random.zip", bytes(range(256)) * 8, "random.zip is not a zip file."),
        ("promo.zip", no_manifest(), "promo/: the package has no manifest.json."),
    ],
)
def test_a_broken_package_shows_a_clear_error_and_stores_nothing(
    live_server, console_login, marketer, welcome, page: Page, tmp_path, name, data, error
):
    path = tmp_path / name
    path.write_bytes(data)
    before = (Template.objects.count(), TemplateVersion.objects.count(), AuditEntry.objects.count())
    console_login(marketer)
    check_package(page, live_server, path)
    expect(page.get_by_text(error)).to_be_visible()
    expect(page.get_by_test_id("import-preview")).to_have_count(0)
    expect(page.get_by_role("button", name="Import", exact=True)).to_have_count(0)
    assert (Template.objects.count(), TemplateVersion.objects.count(), AuditEntry.objects.count()) == before


def test_a_never_sent_template_is_deleted_after_a_confirmation_a_sent_one_only_archived(
    live_server, console_login, marketer, receipts, page: Page
):
    draft = make_template("spring", "en", "Spring sale", "Spring", "<p>Sale</p>")
    sent = make_template("receipt", "en", "Receipt", "Your receipt", "<p>Thanks</p>")
    enqueue_message(channel="email", to="ada@example.com", template=sent, topic=receipts)
    console_login(marketer)

    # the never-sent template: Delete on its page asks first, then deletes it
    page.goto(f"{live_server.url}{LIST}{draft.pk}/change/")
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_text("Are you sure", exact=False).first).to_be_visible()
    assert Template.objects.filter(pk=draft.pk).exists()
    page.get_by_role("button", name=re.compile("Yes, I.m sure")).click()
    page.wait_for_url(f"{live_server.url}{LIST}")
    expect(page.locator("#result_list")).not_to_contain_text("Spring sale")
    assert not Template.objects.filter(pk=draft.pk).exists()
    assert AuditEntry.objects.filter(verb="deleted", actor=marketer, target_type="messaging.template").count() == 1

    # the sent one: the console refuses and says to archive it
    page.goto(f"{live_server.url}{LIST}{sent.pk}/change/")
    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_text("This template has been sent: it cannot be deleted, archive it instead.")).to_be_visible()
    assert Template.objects.filter(pk=sent.pk).exists()
    # and archiving is offered right there, after a confirmation
    page.get_by_role("link", name="Archive").click()
    dialog = page.locator("#dialog")
    expect(dialog).to_contain_text("Archive this template?")
    dialog.get_by_role("button", name="Archive").click()
    page.wait_for_url(f"{live_server.url}{LIST}{sent.pk}/change/")
    expect(page.get_by_text("Archived: hidden from pickers and never sent again; the history stays.")).to_be_visible()
    sent.refresh_from_db()
    assert sent.archived_at is not None and not sent.is_active
    assert AuditEntry.objects.filter(verb="archived", actor=marketer).count() == 1
    # the list's delete action refuses it too, after its confirmation, and the list shows it archived
    page.goto(f"{live_server.url}{LIST}")
    expect(page.locator("#result_list tbody tr", has_text="Receipt")).to_contain_text("archived")
    run_action(page, "Delete (never sent)", "Receipt")
    expect(page.get_by_role("alert")).to_contain_text("archive it instead")
    page.get_by_role("button", name="Yes, I am sure").click()
    expect(page.get_by_text("has been sent: it cannot be deleted, archive it instead.")).to_be_visible()
    assert Template.objects.filter(pk=sent.pk).exists()
