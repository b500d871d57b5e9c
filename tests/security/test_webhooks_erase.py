"""GDPR erasure (issue 16, item 18): erasing a contact scrubs her personal data from every
table that kept it (outbox, sandbox, attempts, events, inbound replies, audit, suppressions,
marketing events and orders, gift cards), keeps the aggregates, and keeps suppressing her."""

import json
from collections import Counter

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.functions import Cast

from growth.giftcards import issue_gift_card
from marketing.events import record_order, track_event
from messaging.audit import record_audit
from messaging.consent import suppress_address
from messaging.contacts import create_contact, erase_contact, update_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.erasure import contact_erased
from messaging.models import (
    AuditEntry,
    Contact,
    DeliveryAttempt,
    DeliveryEvent,
    ImportJob,
    InboxMessage,
    OutboxMessage,
    Provider,
    SandboxMessage,
)
from messaging.verification import send_email_verification
from messaging.views.webhooks import signature_for

pytestmark = pytest.mark.django_db

BASE = "http://127.0.0.1:8000"
PERSONAL = ("wendy", "wilde", "walker", "612345678", "ext-wendy-7")


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SECRETS = {"HOOK": "whsec-test"}
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"


def rows_holding(needle: str) -> list[str]:
    """Every text or JSON column of every model of every app that contains `needle`."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, (models.CharField, models.TextField, models.JSONField)):
                continue
            column = Cast(field.name, models.TextField()) if isinstance(field, models.JSONField) else models.F(field.name)
            hits = model._default_manager.annotate(_text=column).filter(_text__icontains=needle)
            for pk, text in hits.values_list("pk", "_text")[:3]:
                found.append(f"{model._meta.label}.{field.name} #{pk}: {str(text)[:120]}")
    return found


def aggregates() -> dict:
    return {
        "messages": OutboxMessage.objects.count(),
        "statuses": Counter(OutboxMessage.objects.values_list("channel", "status")),
        "events": Counter(DeliveryEvent.objects.values_list("kind", flat=True)),
        "attempts": Counter(DeliveryAttempt.objects.values_list("outcome", flat=True)),
        "inbound": InboxMessage.objects.count(),
    }


@pytest.fixture
def wendy(client, admin_user):
    """Wendy got an email (through the real drain into the sandbox) and an SMS, answered the
    SMS, complained about the email, and has a marketing event, an order and a gift card."""
    sms = Provider.objects.create(name="SMS", channel="sms", kind="sandbox", config={"webhook_secret": "HOOK"})
    contact = create_contact(
        actor=admin_user, email="wendy@example.com", phone="+33612345678", first_name="Wendy", last_name="Wilde", external_id="ext-wendy-7"
    )
    update_contact(actor=admin_user, contact=contact, last_name="Walker")
    email = enqueue_message(
        channel="email",
        contact=contact,
        subject="Hi {{ contact.first_name }}",
        html="<p>Hi {{ contact.first_name }} {{ contact.last_name }}, your order is on its way.</p>",
        dedup_key="bulk:k1:wendy@example.com",
    )
    enqueue_message(channel="sms", contact=contact, text="Hi Wendy, reply to tell us how it went")
    send_due_messages()
    email.refresh_from_db()
    assert email.status == "sent" and "Hi Wendy" in email.subject
    assert SandboxMessage.objects.filter(to_address="wendy@example.com").exists()
    body = b"From=%2B33612345678&To=%2B33700000000&Body=Great%2C+thanks+--+Wendy+Walker&MessageSid=SM-1a2b"
    response = client.post(
        f"/webhooks/providers/{sms.pk}/inbound",
        body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Mailroom-Signature": signature_for("whsec-test", body)},
    )
    assert response.status_code == 200
    assert DeliveryEvent.objects.filter(kind="replied").count() == 1
    # the provider echoed her address in its answer and in an event
    DeliveryAttempt.objects.filter(message=email).update(response="250 accepted for <wendy@example.com>")
    DeliveryEvent.objects.create(
        message=email,
        kind="delivered",
        external_id="esp:1",
        payload={"recipient": "wendy@example.com", "ip": "203.0.113.9"},
        occurred_at=email.sent_at,
    )
    suppress_address(actor=admin_user, address="wendy@example.com", channel="email", reason="complaint")
    track_event(contact=contact, name="viewed_product", properties={"email": "wendy@example.com", "name": "Wendy Walker", "price": 12})
    record_order(contact=contact, external_id="order-1", amount="42.00", status="paid", details={"shipping_name": "Wendy Walker"})
    # a test send to her address audited on the provider, and the Django admin's own history
    record_audit(actor=admin_user, verb="test-sent", target=sms, changes={"to": {"before": None, "after": "wendy@example.com"}})
    LogEntry.objects.create(
        user=admin_user,
        content_type=ContentType.objects.get_for_model(Contact),
        object_id=str(contact.pk),
        object_repr="Wendy Walker <wendy@example.com>",
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Last name"]}}]',
    )
    issue_gift_card(actor=admin_user, amount="20", recipient=contact, sender_name="Bob", message="Happy birthday Wendy!", send_email=False)
    return contact, email


def test_erasing_wendy_leaves_her_name_address_and_words_in_no_table(wendy, admin_user, client):
    contact, _email = wendy
    assert rows_holding("wendy")  # the needle finds her before the erasure
    before = aggregates()
    erase_contact(actor=admin_user, contact=contact)
    leftovers = [row for needle in PERSONAL for row in rows_holding(needle)]
    assert leftovers == []
    assert aggregates() == before
    # and the erasure itself is audited, without her data
    entry = AuditEntry.objects.get(verb="erased")
    assert entry.actor == admin_user and "wendy" not in json.dumps(entry.changes).lower()


def test_view_in_browser_of_an_erased_contacts_email_says_no_longer_available(wendy, admin_user, client):
    contact, email = wendy
    url = public_link(email.pk, "__MAILROOM_VIEW__").removeprefix(BASE)
    assert "Hi Wendy" in client.get(url).content.decode()
    erase_contact(actor=admin_user, contact=contact)
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 410 and "no longer available" in page
    assert "Wendy" not in page and "wendy" not in page


def test_an_erased_contacts_suppressed_address_stays_suppressed(wendy, admin_user):
    contact, _email = wendy
    erase_contact(actor=admin_user, contact=contact)
    later = enqueue_message(channel="email", to="Wendy@Example.com", subject="Hello again", text="hi")
    send_due_messages()
    later.refresh_from_db()
    assert later.status == "suppressed"
    assert not SandboxMessage.objects.filter(subject="Hello again").exists()


def test_an_erasure_that_fails_half_way_changes_nothing(wendy, admin_user):
    def broken_receiver(**kwargs):
        raise RuntimeError("a higher app failed")

    contact, email = wendy
    contact_erased.connect(broken_receiver, dispatch_uid="test_broken")
    try:
        with pytest.raises(RuntimeError):
            erase_contact(actor=admin_user, contact=contact)
    finally:
        contact_erased.disconnect(dispatch_uid="test_broken")
    contact.refresh_from_db()
    email.refresh_from_db()
    assert contact.erased_at is None and email.to_address == "wendy@example.com" and "Hi Wendy" in email.subject
    assert not AuditEntry.objects.filter(verb="erased").exists()


def test_erasing_a_contact_drops_the_sealed_secret_of_her_queued_verification_link(admin_user):
    contact = create_contact(actor=admin_user, email="wendy@example.com", first_name="Wendy")
    message = send_email_verification(actor=admin_user, contact=contact)
    assert OutboxMessage.objects.get(pk=message.pk).sealed_secrets  # sealed, waiting to be sent
    erase_contact(actor=admin_user, contact=contact)
    message.refresh_from_db()
    assert message.sealed_secrets == "" and message.status == OutboxMessage.Status.CANCELLED


def test_erasing_a_contact_scrubs_her_address_from_import_job_errors(admin_user):
    contact = create_contact(actor=admin_user, email="wendy@example.com", first_name="Wendy")
    job = ImportJob.objects.create(
        file_name="people.csv", status=ImportJob.Status.DONE, errors=[{"line": 3, "message": "wendy@example.com is already suppressed"}]
    )
    erase_contact(actor=admin_user, contact=contact)
    job.refresh_from_db()
    assert "wendy" not in json.dumps(job.errors).lower()
    assert job.errors[0]["line"] == 3  # the report keeps its shape
