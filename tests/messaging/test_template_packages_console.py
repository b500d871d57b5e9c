"""Template packages and retirement in the console (issue 20, item 6), through HTTP: the
import page checks a zip (dry run) then imports it on confirmation, "Export as zip" on the
list, the delete action (never-sent templates only, after a confirmation), archiving."""

import io
import json
import zipfile

import lxml.html
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.models import AuditEntry, Template

pytestmark = pytest.mark.django_db
LIST = "/admin/messaging/template/"
IMPORT = "/admin/messaging/template/import/"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


def flashed(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def package(subject: str = "Summer") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("summer/manifest.json", json.dumps({"format": 1, "key": "summer", "name": "Summer", "category": "promotion"}))
        archive.writestr("summer/en.html", f"---\nsubject: {subject}\n---\n<p>Hello</p>\n")
    return SimpleUploadedFile("summer.zip", buffer.getvalue(), content_type="application/zip")


@pytest.fixture
def spring(db):
    template = create_template(actor=None, key="spring", name="Spring", category="promotion")
    version = save_template_version(actor=None, template=template, body_format="html", subject="Hi", body="<p>Hello</p>")
    activate_template_version(actor=None, version=version)
    template.refresh_from_db()
    return template


def test_the_import_page_previews_then_imports_on_confirmation(client, marketer):
    client.force_login(marketer)
    assert client.get(IMPORT).status_code == 200
    # when the marketer uploads a package
    preview = client.post(IMPORT, {"package": package(), "preview": "1"})
    # then the page lists what would happen and nothing is written yet
    assert preview.status_code == 200
    rows = lxml.html.fromstring(preview.content.decode()).cssselect("[data-testid=import-preview] tbody tr")
    assert [[cell.text_content().strip() for cell in row][:3] for row in rows] == [["summer", "en", "new template"]]
    assert not Template.objects.filter(key="summer").exists()
    # when they confirm (the form posts the same zip back)
    form = {field.name: field.value for field in lxml.html.fromstring(preview.content.decode()).cssselect("form input[type=hidden]")}
    done = client.post(IMPORT, {**form, "confirm": "1"}, follow=True)
    # then the template exists, active, audited as the marketer
    assert any("1 template(s) created" in text for text in flashed(done))
    assert Template.objects.filter(key="summer", active_version__isnull=False).exists()
    assert AuditEntry.objects.filter(verb="created", actor=marketer).exists()


def test_a_broken_package_shows_the_error_naming_the_file_and_writes_nothing(client, marketer):
    client.force_login(marketer)
    response = client.post(IMPORT, {"package": package(subject="{% if %}"), "preview": "1"})
    assert response.status_code == 200 and "summer/en.html" in response.content.decode()
    assert not Template.objects.filter(key="summer").exists()


def test_a_tampered_confirmation_is_refused(client, marketer):
    client.force_login(marketer)
    response = client.post(IMPORT, {"data": "%%%not base64", "name": "x.zip", "confirm": "1"})
    assert response.status_code == 200 and "upload it again" in response.content.decode()
    assert not Template.objects.exists()


@pytest.mark.parametrize("role", ["support", "ops", "approver"])
def test_support_ops_and_approvers_cannot_import_or_delete_templates(request, client, role, spring):
    client.force_login(request.getfixturevalue(role))
    assert client.get(IMPORT).status_code == 403
    assert client.post(IMPORT, {"package": package(), "preview": "1"}).status_code == 403
    client.post(LIST, {"action": "delete_unsent", "_selected_action": [spring.pk], "confirmed": "yes"})
    assert Template.objects.filter(pk=spring.pk).exists()


def test_export_as_zip_from_the_list(client, marketer, spring):
    client.force_login(marketer)
    response = client.post(LIST, {"action": "export_packages", "_selected_action": [spring.pk]})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(response.content)).namelist()) == ["spring/en.html", "spring/manifest.json"]


def test_delete_asks_first_then_deletes_a_never_sent_template_and_keeps_a_sent_one(client, marketer, spring, receipts):
    client.force_login(marketer)
    sent = create_template(actor=None, key="sent", name="Sent", category="transactional")
    activate_template_version(
        actor=None, version=save_template_version(actor=None, template=sent, body_format="html", subject="s", body="<p>x</p>")
    )
    enqueue_message(channel="email", to="a@example.com", template=Template.objects.get(pk=sent.pk), topic=receipts)
    selected = {"action": "delete_unsent", "_selected_action": [spring.pk, sent.pk]}
    asked = client.post(LIST, selected)
    assert asked.status_code == 200 and "archive it instead" in asked.content.decode()
    assert Template.objects.count() == 2
    done = client.post(LIST, {**selected, "confirmed": "yes"}, follow=True)
    assert list(Template.objects.values_list("key", flat=True)) == ["sent"]
    assert any("archive it instead" in text for text in flashed(done))
    # the change page's delete link refuses the sent one too
    refused = client.get(f"{LIST}{sent.pk}/delete/", follow=True)
    assert any("archive it instead" in text for text in flashed(refused))


def test_archive_and_unarchive_from_the_list(client, marketer, spring):
    client.force_login(marketer)
    client.post(LIST, {"action": "archive", "_selected_action": [spring.pk]})
    spring.refresh_from_db()
    assert spring.archived_at and not spring.is_active
    assert "archived" in client.get(LIST).content.decode()
    client.post(LIST, {"action": "unarchive", "_selected_action": [spring.pk]})
    spring.refresh_from_db()
    assert spring.archived_at is None
