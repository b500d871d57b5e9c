"""The contact importer (messaging.importing) and its management command. The console's
import (through import jobs) is tested in test_console_import.py."""

import io

import pytest
from django.core.management import CommandError, call_command

from messaging.contacts import delete_contact, update_contact
from messaging.errors import InvalidInput
from messaging.importing import ImportReport, Mode, import_contacts
from messaging.models import AuditEntry, ConsentRecord, Contact, Subscription, Topic

pytestmark = pytest.mark.django_db


GOOD_FILE = [
    "email,phone,first_name,locale,timezone,topics,plan",
    " Ada.Lovelace@Example.COM ,06 12 34 56 78,Ada,FR,Europe/Paris,newsletter;promotions,gold",
    "grace@example.com,+1 212 555 0150,Grace,en,America/New_York,newsletter,silver",
    ",07 81 23 45 67,Alan,fr,Europe/Paris,,",
]

# Line numbers are the file's lines: the header is line 1.
BAD_FILE = [
    "email,phone,first_name,timezone,topics",
    "good@example.com,,Good,,newsletter",  # 2: same email as line 8
    "not-an-email,,Nope,,",  # 3: malformed email
    "phone@example.com,12,Nope,,",  # 4: invalid phone
    "zone@example.com,,Nope,Mars/Olympus,",  # 5: unknown time zone
    "topic@example.com,,Nope,,gardening",  # 6: unknown topic
    ",,Nobody,,",  # 7: no identity
    "GOOD@example.com,,Again,,",  # 8: same email as line 2
    "extra@example.com,,Nope,,,surplus",  # 9: more cells than the header
    "fine@example.com,0612345678,Fine,Europe/Paris,newsletter",  # 10: good
]
BAD_LINES = {
    2: "same email as line 8",
    3: "“not-an-email” is not a valid email address",
    4: "“12” is not a valid phone number",
    5: "“Mars/Olympus” is not a known time zone",
    6: "unknown topic(s): gardening",
    7: "a contact needs an email address, a phone number or an external id",
    8: "same email as line 2",
    9: "This row has more cells than the header",
}


def csv_bytes(lines: list[str], encoding: str = "utf-8") -> bytes:
    return ("\n".join(lines) + "\n").encode(encoding)


def run_import(lines: list[str], **options) -> ImportReport:
    options.setdefault("actor", None)
    return import_contacts(stream=io.BytesIO(csv_bytes(lines)), **options)


def run_command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_contacts", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def promotions(db) -> Topic:
    return Topic.objects.create(key="promotions", name="Promotions", kind=Topic.Kind.MARKETING)


# --- the action: a good file ------------------------------------------------------------
def test_good_file_creates_normalised_contacts(newsletter, promotions):
    # when a file typed the way people type is imported
    report = run_import(GOOD_FILE)
    # then every row is a contact, stored in canonical form
    assert (report.rows, report.created, report.updated, report.errors, report.imported) == (3, 3, 0, [], True)
    ada = Contact.objects.get(email="ada.lovelace@example.com")
    assert (ada.phone, ada.first_name, ada.locale, ada.timezone) == ("+33612345678", "Ada", "fr", "Europe/Paris")
    grace = Contact.objects.get(email="grace@example.com")
    assert (grace.phone, grace.locale, grace.timezone) == ("+12125550150", "en", "America/New_York")
    alan = Contact.objects.get(phone="+33781234567")
    assert alan.email is None


def test_unknown_columns_become_attributes(newsletter, promotions):
    # when a file with a column Mailroom does not know ("plan") is imported
    run_import(GOOD_FILE)
    # then it is kept as an attribute of each contact
    assert Contact.objects.get(email="ada.lovelace@example.com").attributes == {"plan": "gold"}
    assert Contact.objects.get(email="grace@example.com").attributes == {"plan": "silver"}
    # an empty cell adds no attribute
    assert Contact.objects.get(phone="+33781234567").attributes == {}


def test_topics_column_subscribes_with_an_import_consent_record_per_topic(newsletter, promotions):
    # when a file with a topics column ("newsletter;promotions") is imported
    report = run_import(GOOD_FILE)
    # then Ada has both topics, Grace the newsletter, Alan nothing
    subscribed = set(Subscription.objects.filter(status="subscribed", channel="email").values_list("contact__first_name", "topic__key"))
    assert subscribed == {("Ada", "newsletter"), ("Ada", "promotions"), ("Grace", "newsletter")}
    assert report.subscriptions == 3
    # and each subscription has its proof of consent, marked as coming from an import
    records = ConsentRecord.objects.all()
    assert {(r.contact.first_name, r.topic.key) for r in records} == subscribed
    assert {(r.source, r.action, r.channel) for r in records} == {("import", "granted", "email")}


def test_consent_records_name_the_person_who_imported_them(marketer, newsletter, promotions):
    run_import(GOOD_FILE, actor=marketer)
    assert {record.actor for record in ConsentRecord.objects.all()} == {marketer}


def test_an_unknown_channel_is_refused(newsletter, promotions):
    with pytest.raises(InvalidInput, match="Unknown channel"):
        run_import(GOOD_FILE, channel="pigeon")
    assert not Subscription.objects.exists()


def test_an_import_is_audited_once_with_its_totals(marketer, newsletter, promotions):
    run_import(GOOD_FILE, actor=marketer)
    entry = AuditEntry.objects.get(verb="imported")
    assert entry.actor == marketer
    assert entry.target_type == "messaging.contact"
    assert entry.changes["rows"]["after"] == {"created": 3, "updated": 0, "rejected": 0}
    # and no per-contact audit noise (the fixture's role grant to the marketer is audited too)
    assert AuditEntry.objects.exclude(target_type="auth.user").count() == 1


def test_progress_is_reported_while_importing(newsletter, promotions):
    # when an import is given a progress callback
    stages = []
    run_import(GOOD_FILE, progress=lambda stage, count: stages.append((stage, count)))
    # then it hears about validation and creation
    assert ("validated", 3) in stages
    assert ("created", 3) in stages


# --- the action: importing again ----------------------------------------------------------
def test_reimporting_the_same_file_creates_nothing_new(newsletter, promotions):
    # given a file already imported
    run_import(GOOD_FILE)
    counts = (Contact.objects.count(), Subscription.objects.count(), ConsentRecord.objects.count())
    # when it is imported again
    report = run_import(GOOD_FILE)
    # then the same contacts are updated, and no contact, subscription or consent is added
    assert (report.created, report.updated, report.subscriptions, report.errors) == (0, 3, 0, [])
    assert (Contact.objects.count(), Subscription.objects.count(), ConsentRecord.objects.count()) == counts
    assert Contact.objects.get(email="ada.lovelace@example.com").attributes == {"plan": "gold"}


def test_existing_contact_matched_by_email_is_updated_and_its_attributes_merged(contact):
    # given Ada, with an attribute from elsewhere
    update_contact(actor=None, contact=contact, attributes={"source": "shop"})
    # when a file names her in another case with a new first name and a new attribute
    report = run_import(["email,first_name,plan", "ADA@Example.com,Adaline,gold"])
    # then she is updated, not duplicated
    assert (report.created, report.updated) == (0, 1)
    assert Contact.objects.count() == 1
    contact.refresh_from_db()
    assert contact.first_name == "Adaline"
    assert contact.attributes == {"source": "shop", "plan": "gold"}


def test_existing_contact_matched_by_phone_is_updated(db):
    # given a contact known only by phone
    run_import(["phone,first_name", "+33612345678,Ada"])
    # when a file names the same number written nationally
    report = run_import(["phone,first_name", "06 12 34 56 78,Adaline"])
    # then that contact is updated
    assert (report.created, report.updated) == (0, 1)
    assert Contact.objects.get().first_name == "Adaline"


def test_empty_cells_do_not_blank_an_existing_contacts_name(contact):
    # when a file names Ada with an empty first name cell
    run_import(["email,first_name", "ada@example.com,"])
    # then her first name stays
    contact.refresh_from_db()
    assert contact.first_name == "Ada"


def test_update_keeps_the_time_zone_and_language_a_file_leaves_out(contact):
    # given Ada in Paris, in French; when a file without those columns names her
    run_import(["email,first_name", "ada@example.com,Adaline"])
    # then her time zone and language are kept
    contact.refresh_from_db()
    assert contact.first_name == "Adaline"
    assert (contact.timezone, contact.locale) == ("Europe/Paris", "fr")


def test_a_deleted_contact_is_not_subscribed_again_by_an_import(contact, newsletter):
    # given Ada was deleted (she receives nothing more)
    delete_contact(actor=None, contact=contact)
    # when a file names her with a topic
    report = run_import(["email,topics", "ada@example.com,newsletter"])
    # then she is not subscribed, and the row is reported
    assert not Subscription.objects.filter(contact=contact).exists()
    assert [error.line for error in report.errors] == [2]


def test_row_naming_two_different_existing_contacts_is_rejected(contact):
    # given Ada (by email) and another contact (by phone)
    run_import(["phone", "+33612345678"])
    # when a row gives Ada's email with the other contact's phone
    report = run_import(["email,phone", "ada@example.com,+33612345678"])
    # then the row is refused rather than merging two people
    assert not report.imported
    assert [(e.line, e.message) for e in report.errors] == [
        (2, "its email, phone and external id belong to different existing contacts"),
    ]


# --- the action: bad rows -----------------------------------------------------------------
def test_one_bad_row_imports_nothing_by_default(marketer, newsletter):
    # when a file with good and bad rows is imported in the default mode
    report = run_import(BAD_FILE, actor=marketer)
    # then nothing at all is written
    assert not report.imported
    assert (report.rows, report.created, report.bad_rows) == (9, 0, 8)
    assert Contact.objects.count() == 0
    assert not Subscription.objects.exists()
    assert not ConsentRecord.objects.exists()
    assert not AuditEntry.objects.exclude(target_type="auth.user").exists()  # but the fixture's role grant


@pytest.mark.parametrize(("line", "message"), sorted(BAD_LINES.items()), ids=lambda value: str(value)[:30])
def test_each_bad_line_is_reported_with_a_readable_message(newsletter, line, message):
    # when the file with bad rows is imported
    report = run_import(BAD_FILE)
    # then each bad line, and only those, is reported with what is wrong
    messages = {error.line: error.message for error in report.errors}
    assert sorted(messages) == sorted(BAD_LINES)
    assert message in messages[line]


def test_a_bad_row_names_the_field_at_fault(newsletter):
    report = run_import(BAD_FILE)
    messages = {error.line: error.message for error in report.errors}
    assert messages[3].startswith("email: ")
    assert messages[4].startswith("phone: ")
    assert messages[5].startswith("timezone: ")


def test_good_mode_imports_exactly_the_good_rows_and_reports_the_bad_ones(marketer, newsletter):
    # when the same file is imported asking for the good rows only
    report = run_import(BAD_FILE, actor=marketer, mode=Mode.GOOD_ROWS)
    # then exactly the good rows land, with their subscriptions
    assert report.imported
    assert set(Contact.objects.values_list("email", flat=True)) == {"fine@example.com"}  # neither of the duplicates
    assert Subscription.objects.count() == ConsentRecord.objects.count() == 1
    # and the bad ones are reported, and counted in the audit entry
    assert [error.line for error in report.errors] == sorted(BAD_LINES)
    assert AuditEntry.objects.get(verb="imported").changes["rows"]["after"] == {"created": 1, "updated": 0, "rejected": 8}


def test_unknown_mode_is_refused(db):
    with pytest.raises(InvalidInput, match="Unknown import mode"):
        run_import(GOOD_FILE, mode="some")


def test_bad_line_is_named_by_its_line_in_the_file_after_a_multiline_cell(db):
    # given a file whose line 2 has a quoted address spanning two lines, and a bad email on line 4
    report = run_import(["email,address", 'ada@example.com,"1 rue de la Paix', 'Paris"', "not-an-email,"])
    # then the report names line 4
    assert [error.line for error in report.errors] == [4]


def test_an_external_id_longer_than_the_column_is_a_bad_row(db):
    # when an external id longer than the column (128) is imported
    report = run_import(["external_id", "x" * 129])
    # then the row is refused, as create_contact refuses it
    assert [error.line for error in report.errors] == [2]
    assert Contact.objects.count() == 0


# --- the action: the file itself ----------------------------------------------------------
LATIN_1_FILE = ["email,first_name,last_name", "helene@example.com,Hélène,Müller"]


def test_a_latin_1_file_read_as_utf_8_is_refused_naming_the_encoding(db):
    # when a Latin-1 file is imported as the default UTF-8
    with pytest.raises(InvalidInput) as error:
        import_contacts(actor=None, stream=io.BytesIO(csv_bytes(LATIN_1_FILE, "latin-1")))
    # then the message says what is wrong and where
    assert "not valid UTF-8" in str(error.value)
    assert "line 2" in str(error.value)
    # and nothing is written
    assert Contact.objects.count() == 0
    assert not AuditEntry.objects.exists()


def test_a_latin_1_file_imports_with_its_accents_when_its_encoding_is_given(db):
    # when the Latin-1 file is imported saying it is Latin-1
    report = import_contacts(actor=None, stream=io.BytesIO(csv_bytes(LATIN_1_FILE, "latin-1")), encoding="latin-1")
    # then the accents are intact
    assert report.created == 1
    helene = Contact.objects.get(email="helene@example.com")
    assert (helene.first_name, helene.last_name) == ("Hélène", "Müller")


def test_a_utf_8_file_with_a_byte_order_mark_is_read(db):
    # when a file saved by Excel (UTF-8 with a BOM) is imported
    report = import_contacts(actor=None, stream=io.BytesIO(b"\xef\xbb\xbf" + csv_bytes(LATIN_1_FILE)))
    # then the BOM does not hide the email header
    assert report.created == 1
    assert Contact.objects.get().first_name == "Hélène"


def test_unknown_encoding_is_refused(db):
    with pytest.raises(InvalidInput, match="Unknown encoding “klingon”"):
        run_import(GOOD_FILE, encoding="klingon")


@pytest.mark.parametrize("lines", [["first_name,last_name", "Ada,Lovelace"], []], ids=["no identity column", "empty file"])
def test_a_file_without_an_identity_column_is_refused(lines):
    # when a file has no email, phone or external_id header, it is refused with the columns it needs
    with pytest.raises(InvalidInput, match="at least one of these columns: email, phone, external_id"):
        run_import(lines)
    assert Contact.objects.count() == 0


def test_header_names_are_read_whatever_their_case_and_spacing(db):
    # when the header is typed loosely, it is still understood
    run_import([" Email , First_Name ", "ada@example.com,Ada"])
    assert Contact.objects.get().first_name == "Ada"


# --- the management command ---------------------------------------------------------------
@pytest.fixture
def good_path(tmp_path, newsletter, promotions):
    path = tmp_path / "contacts.csv"
    path.write_bytes(csv_bytes(GOOD_FILE))
    return path


@pytest.fixture
def bad_path(tmp_path, newsletter):
    path = tmp_path / "contacts.csv"
    path.write_bytes(csv_bytes(BAD_FILE))
    return path


def test_command_prints_a_summary(good_path):
    # when a good file is imported from the command line
    out, err = run_command(str(good_path))
    # then it prints progress and a summary, and no errors
    assert "3 rows read, 3 contacts created, 0 updated, 3 subscriptions, 0 bad rows" in out
    assert "validated: 3 rows" in out
    assert err == ""
    assert Contact.objects.count() == 3


def test_command_quiet_prints_only_the_summary(good_path):
    out, _err = run_command(str(good_path), "--quiet")
    assert "validated" not in out
    assert "3 contacts created" in out


def test_command_with_bad_rows_imports_nothing_and_lists_them(bad_path):
    # when a file with bad rows is imported from the command line
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("import_contacts", str(bad_path), stdout=out, stderr=err)
    # then it fails saying nothing was imported, and lists each bad line on stderr
    assert "Nothing imported: 8 bad rows" in str(error.value)
    assert "--mode good" in str(error.value)
    listed = err.getvalue().splitlines()
    assert [line.split(":")[0] for line in listed] == [f"line {n}" for n in sorted(BAD_LINES)]
    assert "line 8: same email as line 2" in listed and "line 2: same email as line 8" in listed
    assert Contact.objects.count() == 0


def test_command_good_mode_imports_the_good_rows(bad_path):
    # when the same file is imported with --mode good
    out, err = run_command(str(bad_path), "--mode", "good")
    # then the good rows land and the bad ones are listed
    assert "1 contacts created" in out
    assert "8 bad rows" in out
    assert "line 3: email:" in err
    assert set(Contact.objects.values_list("email", flat=True)) == {"fine@example.com"}


def test_command_passes_the_encoding_on(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(csv_bytes(LATIN_1_FILE, "latin-1"))
    with pytest.raises(CommandError, match="not valid UTF-8"):
        run_command(str(path))
    run_command(str(path), "--encoding", "latin-1")
    assert Contact.objects.get().first_name == "Hélène"


def test_command_on_a_missing_file_says_so(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run_command(str(tmp_path / "nowhere.csv"))
