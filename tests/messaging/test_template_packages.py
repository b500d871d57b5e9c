"""Template packages (issue 20, item 6): a key with all its languages as one zip in the
catalog's layout, read back by the import and by sync_templates; hostile zips are refused
naming the file with nothing written. Deleting a template never sent, archiving a sent one."""

import io
import json
import shutil
import zipfile

import pytest
from django.core.management import CommandError, call_command

from marketing.campaigns.guardrails import content_problems
from marketing.forms import version_choices
from marketing.models import Campaign
from messaging.content.catalog import MAX_FILE_BYTES, MAX_PACKAGE_FILES, catalog_root, sync_catalog
from messaging.content.packages import export_package, import_package
from messaging.content.retirement import archive_template, delete_template, unarchive_template
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import AuditEntry, OutboxMessage, Template, TemplateVersion, Topic

pytestmark = pytest.mark.django_db
PARTS = ("subject", "preheader", "body_format", "body", "text_body", "sms_body", "compiled_html", "compiled_text")


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


@pytest.fixture
def invoice(tmp_path):
    """The catalog's invoice template (en + fr) loaded from a copy of its folder."""
    Topic.objects.create(key="account", name="Account", kind=Topic.Kind.TRANSACTIONAL)
    shutil.copytree(catalog_root() / "invoice", tmp_path / "catalog" / "invoice")
    sync_catalog(root=tmp_path / "catalog")
    return Template.objects.get(key="invoice", locale="en")


def parts_of(key: str) -> dict:
    return {t.locale: {p: getattr(t.active_version, p) for p in PARTS} for t in Template.objects.filter(key=key)}


def make_zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


MANIFEST = json.dumps({"format": 1, "key": "spring", "name": "Spring", "category": "promotion", "channel": "email"})
GOOD = {"spring/manifest.json": MANIFEST, "spring/en.html": "---\nsubject: Spring\n---\n<p>Hello {{ contact.first_name }}</p>\n"}


def nothing_written() -> bool:
    return not Template.objects.filter(key="spring").exists() and not AuditEntry.objects.exists()


# --- round trip --------------------------------------------------------------------------


def test_a_catalog_template_exported_and_imported_into_an_empty_database_is_identical(invoice):
    # given the invoice package (en + fr) and its parts, then an empty database
    data = export_package([invoice])
    before = parts_of("invoice")
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert {"invoice/manifest.json", "invoice/en.mjml", "invoice/fr.mjml"} <= names
    topic = invoice.topic
    Template.objects.all().delete()
    # when
    report = import_package(actor=None, data=data, name="invoice.zip")
    # then both languages are back, active, with identical parts and rendering
    assert [(c.locale, c.action) for c in report.changes] == [("en", "create"), ("fr", "create")]
    assert parts_of("invoice") == before
    assert set(Template.objects.filter(key="invoice").values_list("topic", flat=True)) == {topic.pk}
    fr = Template.objects.get(key="invoice", locale="fr")
    assert fr.name and fr.category == invoice.category


def test_sync_templates_reads_a_package_zip(invoice, tmp_path):
    data = export_package([invoice])
    before = parts_of("invoice")
    Template.objects.all().delete()
    path = tmp_path / "invoice.zip"
    path.write_bytes(data)
    out = io.StringIO()
    call_command("sync_templates", "--from", str(path), stdout=out)
    assert "2 created" in out.getvalue()
    assert parts_of("invoice") == before
    assert Template.objects.filter(key="invoice", from_catalog=True).count() == 2


def test_importing_an_existing_key_adds_a_version_and_keeps_the_history(invoice):
    # given a package where the English body changed
    archive = zipfile.ZipFile(io.BytesIO(export_package([invoice])))
    files = {name: archive.read(name).decode() for name in archive.namelist()}
    files["invoice/en.mjml"] = files["invoice/en.mjml"].replace(
        "</mj-body>", "<mj-section><mj-column><mj-text>PS</mj-text></mj-column></mj-section></mj-body>"
    )
    # when
    report = import_package(actor=None, data=make_zip(files))
    # then English has a new draft version 2, French is unchanged, version 1 still active
    assert {(c.locale, c.action, c.version) for c in report.changes} == {("en", "new version", 2), ("fr", "unchanged", 1)}
    invoice.refresh_from_db()
    assert list(invoice.versions.values_list("number", flat=True)) == [2, 1]
    assert invoice.active_version.number == 1
    # with activate, the new version becomes the active one
    files["invoice/en.mjml"] = files["invoice/en.mjml"].replace("PS", "PPS")
    import_package(actor=None, data=make_zip(files), activate=True)
    invoice.refresh_from_db()
    assert invoice.active_version.number == 3


def test_a_dry_run_reports_and_writes_nothing():
    report = import_package(actor=None, data=make_zip(GOOD), dry_run=True)
    assert [(c.key, c.locale, c.action) for c in report.changes] == [("spring", "en", "create")]
    assert nothing_written()


# --- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files, named",
    [
        ({**GOOD, "../evil.html": "x"}, "../evil.html"),
        ({**GOOD, "/etc/passwd": "x"}, "/etc/passwd"),
        ({**GOOD, "spring/deeper/en.html": "x"}, "spring/deeper/en.html"),
        ({**GOOD, "spring/fr.html": b"---\nsubject: \xe9t\xe9\n---\n<p>x</p>"}, "spring/fr.html"),
        ({**GOOD, "spring/fr.html": "---\nsubject: ok\n---\n<p>{% if %}</p>"}, "spring/fr.html"),
        ({**GOOD, "spring/fr.mjml": "---\nsubject: ok\n---\n<mjml><mj-body><mj-section>{% for x in %}"}, "spring/fr.mjml"),
        ({**GOOD, "spring/manifest.json": json.dumps({"format": 99, "key": "spring"})}, "spring/manifest.json"),
        ({**GOOD, "spring/manifest.json": "{not json"}, "spring/manifest.json"),
        ({"spring/en.html": GOOD["spring/en.html"]}, "manifest.json"),
        ({**GOOD, "spring/fr.html": "no header"}, "spring/fr.html"),
        ({**GOOD, "spring/notes.doc": "x"}, "spring/notes.doc"),
        ({**GOOD, "spring/manifest.json": json.dumps({"format": 1, "languages": ["en"]})}, "spring/manifest.json"),
        ({**GOOD, "spring/manifest.json": json.dumps({"format": 1, "name": ["x"]})}, "spring/manifest.json"),
        ({**GOOD, "spring/fr.html": "---\nsubject: " + "s" * 999 + "\n---\n<p>x</p>"}, "spring/fr.html"),
        ({**GOOD, "Bad Key!/manifest.json": MANIFEST, "Bad Key!/en.html": GOOD["spring/en.html"]}, "Bad Key!"),
    ],
    ids=[
        *("dotdot", "absolute", "subfolder", "not-utf8", "syntax", "mjml-syntax", "format", "json", "no-manifest", "header"),
        *("unknown", "languages", "types", "long-subject", "bad-key"),
    ],
)
def test_a_hostile_or_broken_package_is_refused_naming_the_file_and_writes_nothing(files, named):
    with pytest.raises(InvalidInput) as error:
        import_package(actor=None, data=make_zip(files))
    assert named in str(error.value)
    assert nothing_written()


def test_the_good_language_is_not_kept_when_another_is_broken():
    files = {**GOOD, "spring/fr.html": "---\nsubject: ok\n---\n<p>{% if %}</p>"}
    with pytest.raises(InvalidInput):
        import_package(actor=None, data=make_zip(files))
    assert not TemplateVersion.objects.exists() and nothing_written()


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    # a file far past the per-file limit, compressing to almost nothing
    bomb = make_zip({**GOOD, "spring/en.txt": "0" * (MAX_FILE_BYTES * 11)})
    assert len(bomb) < 100_000
    with pytest.raises(InvalidInput, match="larger than"):
        import_package(actor=None, data=bomb)
    many = make_zip({**GOOD, **{f"spring/x{n}.txt": "" for n in range(MAX_PACKAGE_FILES)}})
    with pytest.raises(InvalidInput, match="files"):
        import_package(actor=None, data=many)
    with pytest.raises(InvalidInput, match="not a zip"):
        import_package(actor=None, data=b"PK\x03\x04 nonsense")
    assert nothing_written()


def test_duplicate_and_encrypted_entries_are_refused_naming_the_file():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning):
        for name, data in GOOD.items():
            archive.writestr(name, data)
        archive.writestr("spring/en.html", "again")
    with pytest.raises(InvalidInput, match="twice"):
        import_package(actor=None, data=buffer.getvalue())
    encrypted = bytearray(make_zip(GOOD))
    # flag bit 0 (encrypted) in the central directory entry of the first file
    at = encrypted.find(b"PK\x01\x02")
    encrypted[at + 8] |= 1
    with pytest.raises(InvalidInput, match=r"spring/"):
        import_package(actor=None, data=bytes(encrypted))
    assert nothing_written()


def test_a_lying_size_in_the_zip_directory_is_caught_while_reading(monkeypatch):
    # the per-file read stops at the limit whatever the directory claims
    monkeypatch.setattr("messaging.content.catalog.MAX_PACKAGE_BYTES", 10**12)
    data = make_zip({**GOOD, "spring/en.txt": "a" * (MAX_FILE_BYTES + 1)})
    with pytest.raises(InvalidInput, match=r"spring/en\.txt"):
        import_package(actor=None, data=data)


# --- delete or archive ---------------------------------------------------------------------


@pytest.fixture
def spring(db):
    template = create_template(actor=None, key="spring", name="Spring", category="promotion")
    version = save_template_version(actor=None, template=template, body_format="html", subject="Hi", body="<p>Hello</p>")
    activate_template_version(actor=None, version=version)
    template.refresh_from_db()
    return template


def test_a_template_never_sent_is_deleted_and_audited(spring, marketer):
    delete_template(actor=marketer, template=spring)
    assert not Template.objects.filter(pk=spring.pk).exists()
    assert AuditEntry.objects.filter(verb="deleted", target_type="messaging.template", target_id=str(spring.pk), actor=marketer).exists()


def test_a_sent_template_cannot_be_deleted_but_can_be_archived_and_unarchived(spring, marketer, receipts):
    enqueue_message(channel="email", to="a@example.com", template=spring, topic=receipts)
    with pytest.raises(NotAllowed, match="archive it instead"):
        delete_template(actor=marketer, template=spring)
    assert Template.objects.filter(pk=spring.pk).exists()
    archived = archive_template(actor=marketer, template=spring)
    assert archived.archived_at and not archived.is_active
    spring.refresh_from_db()
    # nothing new is sent with it; its version cannot be activated again while archived
    with pytest.raises(InvalidInput):
        enqueue_message(channel="email", to="b@example.com", template=spring, topic=receipts)
    with pytest.raises(NotAllowed):
        activate_template_version(actor=marketer, version=spring.active_version)
    assert OutboxMessage.objects.count() == 1
    unarchive_template(actor=marketer, template=spring)
    activate_template_version(actor=marketer, version=spring.active_version)
    assert {"archived", "unarchived"} <= set(AuditEntry.objects.values_list("verb", flat=True))


def test_an_archived_template_is_not_offered_by_the_campaign_template_picker(spring):
    # the campaign wizard's version picker leaves archived templates out
    assert spring.active_version in version_choices()
    archive_template(actor=None, template=spring)
    assert spring.active_version not in version_choices()


def test_topics_of_a_package_must_exist():
    manifest = json.dumps({"format": 1, "key": "spring", "topic": "no-such-topic"})
    with pytest.raises(InvalidInput, match="no-such-topic"):
        import_package(actor=None, data=make_zip({**GOOD, "spring/manifest.json": manifest}))
    assert nothing_written() and not Topic.objects.filter(key="no-such-topic").exists()


def test_package_zips_in_the_catalog_directory_load_with_it_and_a_bad_one_is_named(invoice, tmp_path):
    # given the catalog directory holding a good package zip and a hostile one
    root = tmp_path / "catalog"
    (root / "spring.zip").write_bytes(make_zip(GOOD))
    (root / "evil.zip").write_bytes(make_zip({**GOOD, "../../etc/x.html": "x"}))
    # when
    with pytest.raises(InvalidInput) as error:
        sync_catalog(root=root)
    # then the good zip and the directory loaded, the hostile zip is named and left out
    assert "evil.zip" in str(error.value) and "../../etc/x.html" in str(error.value)
    assert Template.objects.get(key="spring", locale="en").from_catalog
    assert Template.objects.filter(key="invoice").count() == 2


def test_a_campaign_pinning_an_archived_template_cannot_go_ahead(spring, newsletter, marketer):
    campaign = Campaign.objects.create(name="Spring sale", topic=newsletter, template_version=spring.active_version, created_by=marketer)
    assert not any("archived" in problem for problem in content_problems(version=spring.active_version, campaign=campaign))
    archive_template(actor=marketer, template=spring)
    version = TemplateVersion.objects.select_related("template").get(pk=spring.active_version_id)
    assert any("is archived" in problem for problem in content_problems(version=version, campaign=campaign))


def test_a_template_a_campaign_pins_cannot_be_deleted(spring, newsletter, marketer):
    # given a draft campaign (nothing sent yet) pinning the template's version
    Campaign.objects.create(name="Spring sale", topic=newsletter, template_version=spring.active_version, created_by=marketer)
    # when / then: refused as in use, and nothing is gone
    with pytest.raises(NotAllowed, match="archive it instead") as error:
        delete_template(actor=None, template=spring)
    assert error.value.code == "template_in_use"
    assert Template.objects.filter(pk=spring.pk).exists() and not AuditEntry.objects.filter(verb="deleted").exists()


def test_sync_templates_from_a_directory_and_a_missing_path(tmp_path):
    Topic.objects.create(key="account", name="Account", kind=Topic.Kind.TRANSACTIONAL)
    shutil.copytree(catalog_root() / "invoice", tmp_path / "invoice")
    (tmp_path / "spring.zip").write_bytes(make_zip(GOOD))
    out = io.StringIO()
    call_command("sync_templates", "--from", str(tmp_path), stdout=out)
    assert "3 created" in out.getvalue()
    with pytest.raises(CommandError, match="Not found"):
        call_command("sync_templates", "--from", str(tmp_path / "nothing.zip"))
