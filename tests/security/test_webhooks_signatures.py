"""Hostile webhook deliveries (issue 16, low items): signatures with non-ASCII bytes, signed
inbound bodies replayed without a provider id, and signed but malformed payloads."""

import json
import time

import pytest
from django.urls import reverse

from marketing.automations.webhooks import sign_payload
from marketing.models import Event, Order, PaymentWebhookEvent
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import Contact, DeliveryEvent, Inbox, InboxMessage, OutboxMessage, Provider, Suppression
from messaging.views.webhooks import signature_for

pytestmark = pytest.mark.django_db
SECRET = "whsec-test"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SECRETS = {"HOOK": SECRET, "STRIPE_WEBHOOK": SECRET}


@pytest.fixture
def sms(db):
    return Provider.objects.create(name="SMS", channel="sms", kind="sandbox", config={"webhook_secret": "HOOK"})


def post(client, url, body: bytes, *, content_type="application/json", signature=None):
    signature = signature_for(SECRET, body) if signature is None else signature
    return client.post(url, body, content_type=content_type, headers={"X-Mailroom-Signature": signature})


def nothing_stored() -> bool:
    return not (DeliveryEvent.objects.exists() or InboxMessage.objects.exists() or Suppression.objects.exists())


# --- non-ASCII signatures ---------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["events", "inbound"])
@pytest.mark.parametrize("signature", ["sha256=é", "sha256=\u00ff" * 32, "é"])
def test_a_non_ascii_signature_is_refused_with_403_not_a_500(client, sms, endpoint, signature):
    body = json.dumps({"id": "evt-1", "type": "bounced", "From": "+33612345678", "To": "+33700000000", "Body": "STOP"}).encode()
    response = post(client, f"/webhooks/providers/{sms.pk}/{endpoint}", body, signature=signature)
    assert response.status_code == 403
    assert nothing_stored()


@pytest.mark.parametrize("signature", ["t={now},v1=é", "t={now},v1=" + "\u00e9" * 64, "t=é,v1=abc", "t=1" + "0" * 400 + ",v1=abc"])
def test_a_stripe_signature_with_non_ascii_bytes_is_refused_with_403(client, signature):
    body = json.dumps({"id": "evt_1", "type": "checkout.session.completed"}).encode()
    header = signature.format(now=int(time.time()))
    response = client.post(reverse("marketing:webhook-stripe"), body, content_type="application/json", headers={"Stripe-Signature": header})
    assert response.status_code == 403
    assert not PaymentWebhookEvent.objects.exists()


# --- replays of signed inbound bodies without a provider id -----------------------------------
def test_a_signed_inbound_body_without_a_provider_id_replayed_three_times_is_one_reply(client, sms):
    contact = create_contact(actor=None, phone="+33612345678")
    enqueue_message(channel="sms", contact=contact, text="How was it?")
    send_due_messages()
    Inbox.objects.create(name="Main", channel="sms", address="+33700000000")
    body = b"From=%2B33612345678&To=%2B33700000000&Body=Loved+it"
    answers = [post(client, f"/webhooks/providers/{sms.pk}/inbound", body, content_type=FORM).json() for _n in range(3)]
    assert answers[0] == {"status": "handled"} and answers[1:] == [{"status": "duplicate"}] * 2
    assert InboxMessage.objects.count() == 1
    assert DeliveryEvent.objects.filter(kind="replied").count() == 1
    assert Event.objects.filter(name="message_replied").count() == 1


def test_the_same_words_sent_twice_with_their_own_ids_are_both_kept(client, sms):
    """ "yes" twice is a conversation, not a replay: each carries its provider id (or any field
    that differs), so both are stored."""
    url = f"/webhooks/providers/{sms.pk}/inbound"
    post(client, url, b"From=%2B33612345678&To=%2B33700000000&Body=yes&MessageSid=SM1", content_type=FORM)
    post(client, url, b"From=%2B33612345678&To=%2B33700000000&Body=yes&MessageSid=SM2", content_type=FORM)
    post(client, url, b"From=%2B33612345678&To=%2B33700000000&Body=yes&Timestamp=1700000001", content_type=FORM)
    post(client, url, b"From=%2B33612345678&To=%2B33700000000&Body=yes&Timestamp=1700000002", content_type=FORM)
    assert InboxMessage.objects.filter(body="yes").count() == 4


# --- signed but malformed payloads ------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b"[" * 5000 + b"]" * 5000,
        json.dumps({"From": ["+33612345678"], "To": "+33700000000", "Body": "hi"}).encode(),
        json.dumps({"From": "+33612345678", "To": {"a": 1}, "Body": "hi"}).encode(),
        json.dumps({"From": "+33612345678", "To": "+33700000000", "Body": ["hi"]}).encode(),
        json.dumps({"From": "+33612345678", "To": "+33700000000", "Body": "hi", "MessageSid": {"x": 1}}).encode(),
        json.dumps({"From": 33612345678, "To": "+33700000000", "Body": "hi"}).encode(),
        json.dumps({"To": "+33700000000", "Body": "hi"}).encode(),
    ],
)
def test_a_signed_malformed_inbound_payload_gets_400_and_stores_nothing(client, sms, body):
    response = post(client, f"/webhooks/providers/{sms.pk}/inbound", body)
    assert response.status_code == 400
    assert nothing_stored() and not Contact.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[" * 5000 + b"]" * 5000,
        json.dumps({"MessageStatus": ["delivered"], "MessageSid": "SM1"}).encode(),
        json.dumps({"MessageStatus": "delivered", "MessageSid": {"a": 1}}).encode(),
        json.dumps({"type": ["bounced"], "id": "evt-1"}).encode(),
        json.dumps({"type": "bounced", "id": {"a": 1}}).encode(),
        json.dumps({"type": "bounced", "id": "evt-1", "message_id": ["x"]}).encode(),
        json.dumps({"type": "bounced", "id": "e" * 500}).encode(),
    ],
)
def test_a_signed_malformed_event_payload_gets_400_and_stores_nothing(client, sms, payload):
    response = post(client, f"/webhooks/providers/{sms.pk}/events", payload)
    assert response.status_code == 400
    assert nothing_stored()


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "evt_1", "type": "checkout.session.completed", "data": ["x"]},
        {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": "cs_1"}},
        {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1", "metadata": "S-1"}}},
        {
            "id": "evt_1",
            "type": "checkout.session.completed",
            "data": {"object": {"id": "cs_1", "amount_total": "lots", "customer_email": "a@b.co"}},
        },
        {
            "id": "evt_1",
            "type": "checkout.session.completed",
            "data": {"object": {"id": "cs_1", "amount_total": [1], "customer_email": "a@b.co"}},
        },
        {
            "id": "evt_1",
            "type": "checkout.session.completed",
            "data": {"object": {"id": "cs_1", "customer_details": "x", "amount_total": 1}},
        },
        {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1", "customer_email": ["a@b.co"]}}},
        {"id": {"a": 1}, "type": "checkout.session.completed"},
        {"id": "evt_1", "type": ["checkout.session.completed"]},
    ],
)
def test_a_signed_malformed_stripe_payload_gets_400_and_stores_nothing(client, payload):
    body = json.dumps(payload).encode()
    response = client.post(
        reverse("marketing:webhook-stripe"),
        body,
        content_type="application/json",
        headers={"Stripe-Signature": sign_payload(payload=body, secret=SECRET)},
    )
    assert response.status_code == 400
    assert not PaymentWebhookEvent.objects.exists() and not Order.objects.exists() and not Contact.objects.exists()
    assert not OutboxMessage.objects.exists()
