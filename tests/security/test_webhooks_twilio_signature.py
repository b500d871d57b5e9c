"""Twilio's own X-Twilio-Signature on status callbacks and inbound SMS/WhatsApp: HMAC-SHA1 with
the auth token over the public URL followed by the POST parameters sorted by name (name then
value), base64. A provider configured with "signature": "twilio" accepts exactly that; a
forged, missing or non-ASCII signature is a 403 and stores nothing."""

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import Inbox, InboxMessage, OutboxMessage, Provider, Suppression
from messaging.views.webhooks import signature_for, twilio_signature
from tests.support.events import webhook_events

pytestmark = pytest.mark.django_db
TOKEN = "twilio-auth-token"
BASE = "https://mailroom.example.com"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = BASE  # what Twilio was given: we may sit behind a proxy
    settings.MAILROOM_SECRETS = {"TWILIO": TOKEN}


@pytest.fixture
def twilio(db):
    return Provider.objects.create(name="Twilio", channel="sms", kind="sandbox", config={"webhook_secret": "TWILIO", "signature": "twilio"})


def by_hand(token: str, url: str, params: dict) -> str:
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def post_twilio(client, path: str, params: dict, *, signature=None, token=TOKEN):
    signature = by_hand(token, BASE + path, params) if signature is None else signature
    return client.post(path, urlencode(params), content_type=FORM, headers={"X-Twilio-Signature": signature})


def nothing_stored() -> bool:
    return not (webhook_events().exists() or InboxMessage.objects.exists() or Suppression.objects.exists())


def test_twilios_documented_test_vector():
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, list(params.items())) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    # twilio's helper libraries' vector for repeated parameters: values sorted, repeats once
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234"), ("Digits", "1234")]
    assert twilio_signature("12345", url, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_a_signed_twilio_status_callback_is_recorded_once(client, twilio):
    message = enqueue_message(channel="sms", to="+33612345678", text="Hello")
    send_due_messages()
    message.refresh_from_db()
    assert message.provider == twilio
    path = f"/webhooks/providers/{twilio.pk}/events"
    params = {"MessageSid": message.provider_message_id, "MessageStatus": "undelivered", "AccountSid": "AC123", "ErrorCode": "30005"}
    assert post_twilio(client, path, params).json() == {"status": "recorded"}
    assert post_twilio(client, path, params).json() == {"status": "duplicate"}
    assert webhook_events().get().message == message
    assert Suppression.objects.get(address="+33612345678").reason == "hard_bounce"


@pytest.mark.parametrize("sender", ["+33612345678", "whatsapp:+33612345678"])
def test_a_signed_twilio_inbound_sms_or_whatsapp_reaches_the_inbox(client, twilio, sender):
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    contact = create_contact(actor=None, phone="+33612345678")
    Inbox.objects.create(name="Main", channel=channel, address="+33700000000")
    path = f"/webhooks/providers/{twilio.pk}/inbound"
    params = {
        "MessageSid": "SM1",
        "AccountSid": "AC123",
        "From": sender,
        "To": sender.replace("+33612345678", "+33700000000"),
        "Body": "STOP",
    }
    assert post_twilio(client, path, params).json() == {"status": "handled"}
    inbound = InboxMessage.objects.get()
    assert (inbound.channel, inbound.contact, inbound.result) == (channel, contact, "unsubscribed")


def test_the_signed_url_is_the_public_one_with_its_query_string(client, twilio):
    path = f"/webhooks/providers/{twilio.pk}/inbound?source=twilio"
    params = {"MessageSid": "SM2", "From": "+33612345678", "To": "+33700000000", "Body": "hi"}
    assert post_twilio(client, path, params).status_code == 200
    InboxMessage.objects.all().delete()
    # signed over the address Django sees behind the proxy instead: not what Twilio signs
    internal = by_hand(TOKEN, "http://testserver" + path, params)
    assert post_twilio(client, path, params, signature=internal).status_code == 403
    assert nothing_stored()


@pytest.mark.parametrize("endpoint", ["events", "inbound"])
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda params, path: by_hand("another-token", BASE + path, params), id="other-token"),
        pytest.param(lambda params, path: by_hand(TOKEN, BASE + path, {**params, "Body": "something else"}), id="other-body"),
        pytest.param(lambda params, path: "", id="missing"),
        pytest.param(lambda params, path: "é" * 28, id="non-ascii"),
        pytest.param(lambda params, path: signature_for(TOKEN, urlencode(params).encode()), id="mailroom-style"),
    ],
)
def test_a_wrong_twilio_signature_gets_403_and_stores_nothing(client, twilio, endpoint, forge):
    create_contact(actor=None, phone="+33612345678")
    path = f"/webhooks/providers/{twilio.pk}/{endpoint}"
    params = {"MessageSid": "SM3", "MessageStatus": "undelivered", "From": "+33612345678", "To": "+33700000000", "Body": "STOP"}
    headers = {"X-Twilio-Signature": forge(params, path), "X-Mailroom-Signature": signature_for(TOKEN, urlencode(params).encode())}
    response = client.post(path, urlencode(params), content_type=FORM, headers=headers)
    assert response.status_code == 403
    assert nothing_stored()


def test_a_twilio_signed_json_body_is_refused_since_the_signature_would_not_cover_it(client, twilio):
    path = f"/webhooks/providers/{twilio.pk}/inbound"
    body = b'{"From": "+33612345678", "To": "+33700000000", "Body": "STOP"}'
    response = client.post(path, body, content_type="application/json", headers={"X-Twilio-Signature": by_hand(TOKEN, BASE + path, {})})
    assert response.status_code == 403
    assert nothing_stored()


def test_a_mailroom_signed_provider_still_refuses_a_twilio_signature(client):
    provider = Provider.objects.create(name="Relay", channel="sms", kind="sandbox", config={"webhook_secret": "TWILIO"})
    path = f"/webhooks/providers/{provider.pk}/inbound"
    params = {"MessageSid": "SM4", "From": "+33612345678", "To": "+33700000000", "Body": "STOP"}
    assert post_twilio(client, path, params).status_code == 403
    assert nothing_stored()
    assert not OutboxMessage.objects.exists()


def test_a_signature_over_the_url_with_its_default_port_written_out_counts_too(client, twilio):
    """Twilio's helper libraries accept both forms, since Twilio signs some callbacks with :443."""
    path = f"/webhooks/providers/{twilio.pk}/inbound"
    params = {"MessageSid": "SM5", "From": "+33612345678", "To": "+33700000000", "Body": "hi"}
    signature = by_hand(TOKEN, "https://mailroom.example.com:443" + path, params)
    assert post_twilio(client, path, params, signature=signature).status_code == 200
    assert InboxMessage.objects.count() == 1
