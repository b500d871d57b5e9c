import pytest

from messaging.consent import ConsentContext, subscribe
from messaging.contacts import create_contact, delete_contact, erase_contact, update_contact
from messaging.errors import DuplicateContact, InvalidInput
from messaging.models import AuditEntry, ConsentRecord, Contact, Subscription

pytestmark = pytest.mark.django_db


def test_create_contact_normalises_email_phone_and_language(marketer):
    # when a marketer adds a contact typed the way people type
    contact = create_contact(
        actor=marketer, email="  Ada.Lovelace@Example.COM ", phone="06 12 34 56 78", locale="FR", timezone="Europe/Paris"
    )
    # then it is stored in one canonical form
    contact.refresh_from_db()
    assert contact.email == "ada.lovelace@example.com"
    assert contact.phone == "+33612345678"
    assert contact.locale == "fr"
    # and the creation is audited with who and what
    entry = AuditEntry.objects.get(verb="created", target_id=str(contact.pk))
    assert entry.actor == marketer
    assert entry.changes["email"] == {"before": None, "after": "ada.lovelace@example.com"}


def test_international_phone_keeps_its_country():
    contact = create_contact(actor=None, phone="+1 (212) 555-0150")
    assert contact.phone == "+12125550150"


@pytest.mark.parametrize(
    ("fields", "bad_field", "message"),
    [
        ({"email": "not-an-email"}, "email", "is not a valid email address"),
        ({"email": "a@b.com", "phone": "12"}, "phone", "phone number"),
        ({"email": "a@b.com", "phone": "hello"}, "phone", "is not a phone number"),
        ({"email": "a@b.com", "timezone": "Mars/Olympus"}, "timezone", "is not a known time zone"),
        ({"email": "a@b.com", "locale": "de"}, "locale", "is not a supported language"),
        ({"first_name": "Nobody"}, "__all__", "needs an email address, a phone number or an external id"),
    ],
)
def test_bad_contact_input_is_refused_with_a_message_naming_the_field(fields, bad_field, message):
    # when a contact is created with one bad value
    with pytest.raises(InvalidInput) as error:
        create_contact(actor=None, **fields)
    # then the error names the field and says what is wrong
    assert bad_field in error.value.fields
    assert message in str(error.value)
    # and nothing was written
    assert Contact.objects.count() == 0
    assert AuditEntry.objects.count() == 0


def test_several_bad_fields_are_reported_together():
    with pytest.raises(InvalidInput) as error:
        create_contact(actor=None, email="nope", phone="12", timezone="Nowhere")
    assert set(error.value.fields) == {"email", "phone", "timezone"}


def test_unknown_fields_are_refused():
    with pytest.raises(InvalidInput, match="Unknown contact fields: favourite_colour"):
        create_contact(actor=None, email="a@b.com", favourite_colour="blue")


def test_duplicate_email_in_another_case_is_refused(contact):
    # given ada@example.com exists; when someone adds ADA@example.com
    with pytest.raises(DuplicateContact, match="already exists"):
        create_contact(actor=None, email="ADA@Example.com")
    # then there is still one contact
    assert Contact.objects.count() == 1


def test_duplicate_phone_is_refused():
    create_contact(actor=None, phone="+33612345678")
    with pytest.raises(DuplicateContact):
        create_contact(actor=None, email="x@y.com", phone="0612345678")
    assert Contact.objects.count() == 1


def test_update_contact_audits_before_and_after(contact, support):
    update_contact(actor=support, contact=contact, first_name="Augusta", timezone="America/New_York")
    contact.refresh_from_db()
    assert (contact.first_name, contact.timezone) == ("Augusta", "America/New_York")
    entry = AuditEntry.objects.get(verb="updated")
    assert entry.actor == support
    assert entry.changes == {
        "first_name": {"before": "Ada", "after": "Augusta"},
        "timezone": {"before": "Europe/Paris", "after": "America/New_York"},
    }


def test_update_without_change_writes_no_audit(contact):
    update_contact(actor=None, contact=contact, first_name="Ada")
    assert not AuditEntry.objects.filter(verb="updated").exists()


def test_bad_update_changes_nothing(contact):
    with pytest.raises(InvalidInput):
        update_contact(actor=None, contact=contact, email="broken", first_name="Changed")
    contact.refresh_from_db()
    assert (contact.email, contact.first_name) == ("ada@example.com", "Ada")
    assert not AuditEntry.objects.filter(verb="updated").exists()


def test_update_to_an_address_already_taken_is_refused(contact):
    other = create_contact(actor=None, email="bob@example.com")
    with pytest.raises(DuplicateContact):
        update_contact(actor=None, contact=other, email="ada@example.com")
    other.refresh_from_db()
    assert other.email == "bob@example.com"


def test_soft_delete_keeps_the_row(contact):
    delete_contact(actor=None, contact=contact)
    contact.refresh_from_db()
    assert contact.deleted_at is not None
    assert Contact.objects.active().count() == 0
    assert Contact.objects.count() == 1


def test_erase_removes_identity_but_keeps_aggregates(contact, newsletter, admin_user):
    # given a subscribed contact with an IP in its consent log
    subscribe(actor=None, contact=contact, topic=newsletter, context=ConsentContext(ip_address="203.0.113.7", user_agent="Firefox"))
    contact.attributes = {"plan": "pro"}
    contact.save()
    # when support erases them (GDPR)
    erase_contact(actor=admin_user, contact=contact)
    # then nothing identifies the person any more
    contact.refresh_from_db()
    assert contact.email is None and contact.phone is None and contact.first_name == ""
    assert contact.attributes == {} and contact.erased_at is not None
    assert "ada@example.com" not in str(contact)
    record = ConsentRecord.objects.get()
    assert record.ip_address is None and record.user_agent == ""
    # but the row, the consent history and counts remain, unsubscribed
    assert Contact.objects.count() == 1
    assert Subscription.objects.get().status == Subscription.Status.UNSUBSCRIBED
    assert AuditEntry.objects.filter(verb="erased", actor=admin_user).exists()
    # and an erased contact cannot be edited back to life
    with pytest.raises(InvalidInput):
        update_contact(actor=None, contact=contact, email="ada@example.com")


def test_erasing_twice_is_harmless(contact):
    erase_contact(actor=None, contact=contact)
    erase_contact(actor=None, contact=contact)
    assert AuditEntry.objects.filter(verb="erased").count() == 1
