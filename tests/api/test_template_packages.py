"""Templates API (issue 20, item 6): DELETE a template never sent (204) or refuse a sent
one (409, archive instead), archive/unarchive, export a package zip, import one (dry run,
then for real), and who may do each."""

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.models import AuditEntry, Template
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/templates/"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


@pytest.fixture
def spring(db):
    template = create_template(actor=None, key="spring", name="Spring", category="promotion")
    version = save_template_version(actor=None, template=template, body_format="html", subject="Hi", body="<p>Hello</p>")
    activate_template_version(actor=None, version=version)
    template.refresh_from_db()
    return template


def package(body: str = "<p>Summer {{ contact.first_name }}</p>") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("summer/manifest.json", json.dumps({"format": 1, "key": "summer", "name": "Summer", "category": "promotion"}))
        archive.writestr("summer/en.html", f"---\nsubject: Summer\n---\n{body}\n")
        archive.writestr("summer/fr.html", f"---\nsubject: Été\n---\n{body}\n")
    return SimpleUploadedFile("summer.zip", buffer.getvalue(), content_type="application/zip")


def test_delete_a_template_never_sent_is_204_and_it_is_gone(as_user, marketer, spring):
    response = as_user(marketer).delete(f"{URL}{spring.pk}/")
    assert response.status_code == 204
    assert not Template.objects.filter(pk=spring.pk).exists()
    assert AuditEntry.objects.filter(verb="deleted", actor=marketer, target_id=str(spring.pk)).exists()


def test_delete_a_sent_template_is_a_409_and_it_stays_then_it_can_be_archived(as_user, marketer, spring, receipts):
    enqueue_message(channel="email", to="a@example.com", template=spring, topic=receipts)
    client = as_user(marketer)
    body = assert_problem(client.delete(f"{URL}{spring.pk}/"), 409, "template_sent")
    assert "archive it instead" in body["detail"]
    assert Template.objects.filter(pk=spring.pk).exists()
    archived = client.post(f"{URL}{spring.pk}/archive/")
    assert archived.status_code == 200 and archived.json()["archived_at"] and not archived.json()["is_active"]
    assert [t["key"] for t in client.get(URL, {"archived": "true"}).json()["results"]] == ["spring"]
    assert client.get(URL, {"archived": "false"}).json()["results"] == []
    back = client.post(f"{URL}{spring.pk}/unarchive/")
    assert back.status_code == 200 and back.json()["archived_at"] is None


def test_export_is_a_zip_of_the_key_with_every_language(as_user, marketer, spring):
    fr = create_template(actor=None, key="spring", name="Printemps", locale="fr", category="promotion")
    save_template_version(actor=None, template=fr, body_format="html", subject="Salut", body="<p>Bonjour</p>")
    response = as_user(marketer).get(f"{URL}{spring.pk}/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert 'filename="spring.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["spring/en.html", "spring/fr.html", "spring/manifest.json"]
    manifest = json.loads(archive.read("spring/manifest.json"))
    assert manifest["format"] == 1 and manifest["languages"]["fr"]["name"] == "Printemps"


def test_import_dry_run_then_for_real(as_user, marketer):
    client = as_user(marketer)
    dry = client.post(f"{URL}import/", {"file": package(), "dry_run": "true"}, format="multipart")
    assert dry.status_code == 200, dry.content
    assert [(c["locale"], c["action"]) for c in dry.json()["changes"]] == [("en", "create"), ("fr", "create")]
    assert not Template.objects.filter(key="summer").exists()
    done = client.post(f"{URL}import/", {"file": package()}, format="multipart")
    assert done.status_code == 201 and not done.json()["dry_run"]
    assert Template.objects.filter(key="summer", active_version__isnull=False).count() == 2
    assert AuditEntry.objects.filter(verb="created", actor=marketer).count() == 2


def test_a_broken_package_is_a_400_naming_the_file_and_nothing_is_written(as_user, marketer):
    body = assert_problem(as_user(marketer).post(f"{URL}import/", {"file": package("{% if %}")}, format="multipart"), 400)
    assert "summer/en.html" in body["detail"]
    assert not Template.objects.filter(key="summer").exists()


@pytest.mark.parametrize("role", ["support", "ops", "approver"])
def test_support_ops_and_approvers_cannot_import_delete_or_archive(request, as_user, role, spring):
    client = as_user(request.getfixturevalue(role))
    assert_problem(client.post(f"{URL}import/", {"file": package()}, format="multipart"), 403)
    assert_problem(client.delete(f"{URL}{spring.pk}/"), 403)
    assert_problem(client.post(f"{URL}{spring.pk}/archive/"), 403)
    assert Template.objects.filter(pk=spring.pk, archived_at__isnull=True).exists()
    assert not Template.objects.filter(key="summer").exists()
