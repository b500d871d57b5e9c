import pytest

from messaging.consent import ConsentContext, lift_suppression, subscribe, suppress_address, unsubscribe
from messaging.contacts import delete_contact
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, ConsentRecord, Subscription, Suppression
from messaging.queries import has_consent, is_suppressed

pytestmark = pytest.mark.django_db


def test_subscribing_records_consent_with_its_context(contact, newsletter, marketer):
    # when a contact subscribes from the sign-up form
    context = ConsentContext(source=ConsentRecord.Source.SIGNUP, ip_address="198.51.100.4", wording_version="v3")
    subscribe(actor=marketer, contact=contact, topic=newsletter, context=context)
    # then they have consent, and the log says who, what, how
    assert has_consent(contact=contact, topic=newsletter, channel="email")
    record = ConsentRecord.objects.get()
    assert (record.action, record.source, record.ip_address, record.wording_version) == ("granted", "signup", "198.51.100.4", "v3")
    assert record.actor == marketer


def test_subscribing_twice_writes_one_record(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    subscribe(actor=None, contact=contact, topic=newsletter)
    assert ConsentRecord.objects.count() == 1
    assert Subscription.objects.count() == 1


def test_consent_is_per_channel(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter, channel="email")
    assert not has_consent(contact=contact, topic=newsletter, channel="sms")


def test_transactional_topics_need_no_subscription(contact, receipts):
    assert has_consent(contact=contact, topic=receipts, channel="email")


def test_unsubscribe_from_everything_withdraws_each_topic(contact, newsletter, receipts):
    subscribe(actor=None, contact=contact, topic=newsletter)
    subscribe(actor=None, contact=contact, topic=receipts)
    unsubscribe(actor=None, contact=contact, context=ConsentContext(source=ConsentRecord.Source.UNSUBSCRIBE_LINK))
    assert not has_consent(contact=contact, topic=newsletter, channel="email")
    withdrawn = ConsentRecord.objects.filter(action="withdrawn")
    assert withdrawn.count() == 2
    assert set(withdrawn.values_list("source", flat=True)) == {"unsubscribe_link"}


def test_unknown_channel_is_refused_and_nothing_written(contact, newsletter):
    with pytest.raises(InvalidInput, match="Unknown channel"):
        subscribe(actor=None, contact=contact, topic=newsletter, channel="pigeon")
    assert Subscription.objects.count() == 0
    assert ConsentRecord.objects.count() == 0


def test_deleted_contact_cannot_be_subscribed(contact, newsletter):
    delete_contact(actor=None, contact=contact)
    contact.refresh_from_db()
    with pytest.raises(InvalidInput):
        subscribe(actor=None, contact=contact, topic=newsletter)


def test_consent_records_are_append_only(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    record = ConsentRecord.objects.get()
    record.source = "api"
    with pytest.raises(TypeError, match="append-only"):
        record.save()
    with pytest.raises(TypeError):
        record.delete()
    with pytest.raises(TypeError):
        ConsentRecord.objects.all().update(source="api")
    with pytest.raises(TypeError):
        ConsentRecord.objects.all().delete()
    assert ConsentRecord.objects.get().source == "console"


def test_suppressing_an_address_normalises_it_and_is_idempotent(ops):
    suppress_address(actor=ops, address=" Bounce@Example.com", channel="email", reason="hard_bounce")
    suppress_address(actor=ops, address="bounce@example.com", channel="email", reason="manual")
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason) == ("bounce@example.com", "hard_bounce")
    assert is_suppressed(address="bounce@example.com", channel="email")
    assert not is_suppressed(address="bounce@example.com", channel="sms")
    assert AuditEntry.objects.filter(verb="suppressed").count() == 1


def test_phone_suppressions_are_stored_in_e164():
    suppress_address(actor=None, address="06 12 34 56 78", channel="sms", reason="unsubscribe")
    assert is_suppressed(address="+33612345678", channel="sms")


@pytest.mark.parametrize(
    ("address", "channel", "reason", "message"),
    [
        ("not-an-email", "email", "manual", "not a valid email"),
        ("", "email", "manual", "required"),
        ("12", "sms", "manual", "phone number"),
        ("a@b.com", "fax", "manual", "Unknown channel"),
        ("a@b.com", "email", "because", "Unknown suppression reason"),
    ],
)
def test_bad_suppressions_are_refused(address, channel, reason, message):
    with pytest.raises(InvalidInput, match=message):
        suppress_address(actor=None, address=address, channel=channel, reason=reason)
    assert Suppression.objects.count() == 0


def test_lifting_a_suppression_is_audited(ops):
    suppression = suppress_address(actor=ops, address="a@b.com", channel="email", reason="manual")
    lift_suppression(actor=ops, suppression=suppression)
    assert not is_suppressed(address="a@b.com", channel="email")
    assert AuditEntry.objects.filter(verb="unsuppressed", actor=ops).exists()
