"""ESP webhooks through django-anymail, routed under /webhooks/anymail/: the payloads each ESP
documents (shapes from anymail's own test suite) land once on the message the ESP id names;
bounces suppress, complaints unsubscribe; a wrong or missing credential stores nothing."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import DeliveryEvent, Inbox, InboxMessage, OutboxMessage, Suppression
from tests.support.events import webhook_events

pytestmark = pytest.mark.django_db
WEBHOOK_SECRET = "hook-user:hook-password"
MAILGUN_KEY = "mailgun-signing-key"
TO = "reader@example.com"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


def basic_auth(credentials: str = WEBHOOK_SECRET) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def sent_email(esp_message_id: str) -> OutboxMessage:
    """A sent email whose provider id is the ESP's message id, as DjangoBackendSession records it."""
    contact = create_contact(actor=None, email=TO)
    message = enqueue_message(channel="email", contact=contact, subject="Hi", html="<p>Hi</p>", text="Hi")
    send_due_messages()
    OutboxMessage.objects.filter(pk=message.pk).update(provider_message_id=esp_message_id)
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT
    return message


def nothing_stored() -> bool:
    return not (webhook_events().exists() or Suppression.objects.exists())


# --- Amazon SES (SNS notifications; anymail authenticates them by basic auth) ------------------
SES_ID = "0100016a6bd5c1fd-8b1e7c9a-1e9b-4f6c-9a8a-0123456789ab-000000"
SES_EVENTS = {
    "bounced": {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": TO, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
            "timestamp": "2018-03-26T17:58:59.675Z",
            "feedbackId": "feedback-1",
            "reportingMTA": "dsn; a27-23.smtp-out.us-west-2.amazonses.com",
        },
    },
    "complained": {
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": TO}],
            "timestamp": "2018-03-26T17:58:59.675Z",
            "feedbackId": "feedback-2",
            "complaintFeedbackType": "abuse",
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "arrivalDate": "2018-03-26T17:58:59.675Z",
        },
    },
    "delivered": {
        "eventType": "Delivery",
        "delivery": {
            "timestamp": "2018-03-26T17:58:59.675Z",
            "processingTimeMillis": 546,
            "recipients": [TO],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "a27-23.smtp-out.us-west-2.amazonses.com",
        },
    },
    "opened": {
        "eventType": "Open",
        "open": {"ipAddress": "192.0.2.1", "timestamp": "2018-03-26T17:58:59.675Z", "userAgent": "Mozilla/5.0"},
    },
    "clicked": {
        "eventType": "Click",
        "click": {
            "ipAddress": "192.0.2.1",
            "link": "https://example.com/sale",
            "linkTags": {},
            "timestamp": "2018-03-26T17:58:59.675Z",
            "userAgent": "Mozilla/5.0",
        },
    },
}


def post_ses(client, kind, *, sns_id="sns-1", headers=None):
    ses_event = {
        **SES_EVENTS[kind],
        "mail": {
            "timestamp": "2018-03-26T17:58:59.675Z",
            "source": "hello@mailroom.test",
            "messageId": SES_ID,
            "destination": [TO],
            "headers": [],
        },
    }
    sns = {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:111111111111:SES_Tracking",
        "Message": json.dumps(ses_event),
        "Timestamp": "2018-03-26T17:58:59.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-12345.pem",
    }
    return client.post(
        "/webhooks/anymail/amazon_ses/tracking/",
        json.dumps(sns),
        content_type="text/plain; charset=UTF-8",
        headers={
            "x-amz-sns-message-type": "Notification",
            "x-amz-sns-message-id": sns_id,
            **(basic_auth() if headers is None else headers),
        },
    )


# --- SendGrid (event webhook: a JSON list; basic auth) -------------------------------------------
SG_ID = "mailroom-anymail-id-1"
SG_EVENTS = {
    "bounced": {"event": "bounce", "type": "bounce", "reason": "550 5.1.1 user unknown", "status": "5.1.1"},
    "complained": {"event": "spamreport"},
    "delivered": {"event": "delivered", "response": "250 OK"},
    "opened": {"event": "open", "useragent": "Mozilla/5.0", "ip": "192.0.2.1"},
    "clicked": {"event": "click", "url": "https://example.com/sale", "useragent": "Mozilla/5.0", "ip": "192.0.2.1"},
}


def post_sendgrid(client, kind, *, headers=None):
    event = {
        **SG_EVENTS[kind],
        "email": TO,
        "timestamp": 1513299569,
        "sg_event_id": f"sg-{kind}",
        "sg_message_id": "aGOS1Ot9SdSmZsuDbFT5Yg.filter0001p3las1-1234-5A1B2C3D-1.0",
        "anymail_id": SG_ID,
        "smtp-id": "<wrfRRvF7Q0GgwUo2CvDmEA@example.com>",
    }
    return client.post(
        "/webhooks/anymail/sendgrid/tracking/",
        json.dumps([event]),
        content_type="application/json",
        headers=basic_auth() if headers is None else headers,
    )


# --- Mailgun (webhooks API: JSON signed with the webhook signing key) ----------------------------
MG_ID = "<20180329182538.1.F0F8FCC0A3C2F1D7@example.com>"
MG_EVENTS = {
    "bounced": {
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "delivery-status": {"code": 550, "message": "5.1.1 user unknown", "description": ""},
    },
    "complained": {"event": "complained"},
    "delivered": {"event": "delivered", "delivery-status": {"code": 250, "message": "OK", "description": ""}},
    "opened": {"event": "opened", "client-info": {"user-agent": "Mozilla/5.0"}},
    "clicked": {"event": "clicked", "url": "https://example.com/sale"},
}


def mailgun_signature(key=MAILGUN_KEY, *, token="a" * 50, timestamp=None):
    timestamp = str(timestamp or int(time.time()))
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"token": token, "timestamp": timestamp, "signature": digest}


def post_mailgun(client, kind, *, token=None, key=MAILGUN_KEY):
    event_data = {
        **MG_EVENTS[kind],
        "id": f"mg-{kind}",
        "timestamp": 1522347938.569,
        "recipient": TO,
        "message": {"headers": {"message-id": MG_ID.strip("<>"), "from": "hello@mailroom.test", "to": TO}},
        "user-variables": {},
        "tags": [],
    }
    body = {"signature": mailgun_signature(key, token=token or f"token-{kind}".ljust(50, "x")), "event-data": event_data}
    return client.post("/webhooks/anymail/mailgun/tracking/", json.dumps(body), content_type="application/json", headers=basic_auth())


# --- Postmark (JSON per RecordType; basic auth) -------------------------------------------------
PM_ID = "883953f4-6105-42a2-a16a-77a8eac79483"
PM_EVENTS = {
    "bounced": {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": "HardBounce",
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Description": "The server was unable to deliver your message",
        "Details": "smtp;550 5.1.1 user unknown",
        "Email": TO,
        "BouncedAt": "2014-08-01T13:28:10.2735393-04:00",
        "Inactive": True,
        "CanActivate": True,
    },
    "complained": {
        "RecordType": "SpamComplaint",
        "ID": 43,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Email": TO,
        "BouncedAt": "2016-04-27T16:28:50.3963933-04:00",
        "Details": "Test spam complaint details",
    },
    "delivered": {
        "RecordType": "Delivery",
        "Recipient": TO,
        "DeliveredAt": "2014-08-01T13:28:10.2735393-04:00",
        "Details": "Test delivery webhook details",
    },
    "opened": {
        "RecordType": "Open",
        "Recipient": TO,
        "FirstOpen": True,
        "ReceivedAt": "2014-06-01T12:00:00",
        "UserAgent": "Mozilla/5.0",
        "Platform": "WebMail",
        "ReadSeconds": 0,
    },
    "clicked": {
        "RecordType": "Click",
        "Recipient": TO,
        "ClickLocation": "HTML",
        "OriginalLink": "https://example.com/sale",
        "ReceivedAt": "2017-10-25T15:21:11.000Z",
        "UserAgent": "Mozilla/5.0",
        "Platform": "Desktop",
    },
}


def post_postmark(client, kind, *, headers=None):
    payload = {**PM_EVENTS[kind], "MessageID": PM_ID, "Tag": "", "Metadata": {}, "ServerID": 23, "MessageStream": "outbound"}
    return client.post(
        "/webhooks/anymail/postmark/tracking/",
        json.dumps(payload),
        content_type="application/json",
        headers=basic_auth() if headers is None else headers,
    )


ESPS = {
    "amazon_ses": (SES_ID, post_ses),
    "sendgrid": (SG_ID, post_sendgrid),
    "mailgun": (MG_ID, post_mailgun),
    "postmark": (PM_ID, post_postmark),
}
KINDS = ["bounced", "complained", "delivered", "opened", "clicked"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("esp", ESPS)
def test_an_esp_event_lands_once_on_the_message_it_names(client, esp, kind):
    esp_message_id, post = ESPS[esp]
    message = sent_email(esp_message_id)
    # a replayed webhook (ESPs retry) is the same event
    assert post(client, kind).status_code == 200
    assert post(client, kind).status_code == 200
    event = webhook_events().get()
    assert (event.message, event.kind) == (message, kind)
    suppressed = Suppression.objects.filter(address=TO, channel="email").values_list("reason", flat=True)
    expected = {"bounced": ["hard_bounce"], "complained": ["complaint"]}.get(kind, [])
    assert list(suppressed) == expected


def test_an_ses_bounce_suppresses_the_address_so_the_next_mail_is_not_sent(client):
    sent_email(SES_ID)
    post_ses(client, "bounced")
    again = enqueue_message(channel="email", to=TO, subject="Again", text="Again")
    send_due_messages()
    again.refresh_from_db()
    assert again.status != OutboxMessage.Status.SENT


@pytest.mark.parametrize("esp", ["amazon_ses", "sendgrid", "postmark"])
@pytest.mark.parametrize("credentials", [None, "hook-user:wrong", "other:hook-password"])
def test_an_esp_webhook_without_the_right_basic_auth_stores_nothing(client, esp, credentials):
    esp_message_id, post = ESPS[esp]
    sent_email(esp_message_id)
    response = post(client, "bounced", headers={} if credentials is None else basic_auth(credentials))
    assert response.status_code in (400, 401, 403)
    assert nothing_stored()


def test_a_mailgun_event_signed_with_another_key_stores_nothing(client):
    sent_email(MG_ID)
    response = post_mailgun(client, "bounced", key="someone-elses-key")
    assert response.status_code == 400
    assert nothing_stored()


def test_without_a_webhook_secret_esp_webhooks_are_refused_not_open_to_anyone(client, settings):
    settings.ANYMAIL = {}
    sent_email(PM_ID)
    for esp, kind in [("postmark", "bounced"), ("sendgrid", "complained"), ("amazon_ses", "bounced"), ("mailgun", "bounced")]:
        _id, post = ESPS[esp]
        response = post(client, kind)
        assert response.status_code == 403, esp
    assert nothing_stored()


def test_anymail_inbound_urls_are_routed_and_guarded_too(client):
    response = client.post("/webhooks/anymail/postmark/inbound/", "{}", content_type="application/json")
    assert response.status_code in (400, 401, 403)


def test_two_real_postmark_opens_without_event_ids_are_both_kept(client):
    """Postmark gives opens no id: a replay is one event, a second open (another time) is another."""
    sent_email(PM_ID)
    post_postmark(client, "opened")
    later = {**PM_EVENTS["opened"], "ReceivedAt": "2014-06-02T08:00:00Z", "MessageID": PM_ID, "Tag": "", "Metadata": {}}
    client.post("/webhooks/anymail/postmark/tracking/", json.dumps(later), content_type="application/json", headers=basic_auth())
    assert DeliveryEvent.objects.filter(kind="opened").count() == 2


# --- inbound email through an ESP (Postmark's inbound webhook) ----------------------------------
def postmark_inbound(message_id="pm-inbound-1", text="Thanks, see you there"):
    return {
        "FromFull": {"Email": TO, "Name": "Reader"},
        "ToFull": [{"Email": "replies@mailroom.test", "Name": ""}],
        "OriginalRecipient": "replies@mailroom.test",
        "Subject": "Re: Hi",
        "MessageID": message_id,
        "TextBody": text,
        "HtmlBody": "",
        "Headers": [],
        "Attachments": [],
        "Date": "Thu, 5 Apr 2018 16:59:01 +0200",
    }


def test_an_email_reply_through_postmarks_inbound_webhook_reaches_the_email_inbox_once(client):
    inbox = Inbox.objects.create(name="Replies", channel="email", address="replies@mailroom.test")
    for _replay in range(2):
        response = client.post(
            "/webhooks/anymail/postmark/inbound/", json.dumps(postmark_inbound()), content_type="application/json", headers=basic_auth()
        )
        assert response.status_code == 200
    inbound = InboxMessage.objects.get()
    assert (inbound.inbox, inbound.channel, inbound.from_address, inbound.body) == (inbox, "email", TO, "Thanks, see you there")
    assert inbound.status == InboxMessage.Status.HANDLED


def test_an_email_reply_through_an_esp_is_matched_to_its_contact_and_counts_on_the_message_it_answers(client):
    reader = create_contact(actor=None, email=TO)
    answered = enqueue_message(channel="email", contact=reader, subject="Hi", text="Hello")
    enqueue_message(channel="email", contact=reader, subject="Later", text="Hello again")  # her last message: not the one answered
    send_due_messages()
    answered.refresh_from_db()
    Inbox.objects.create(name="Replies", channel="email", address="replies@mailroom.test")
    payload = postmark_inbound() | {"FromFull": {"Email": TO.upper(), "Name": "Reader"}}
    payload["Headers"] = [{"Name": "In-Reply-To", "Value": answered.message_id}]
    response = client.post(
        "/webhooks/anymail/postmark/inbound/", json.dumps(payload), content_type="application/json", headers=basic_auth()
    )
    assert response.status_code == 200
    inbound = InboxMessage.objects.get()
    assert (inbound.contact, inbound.in_reply_to) == (reader, answered)
    assert list(DeliveryEvent.objects.filter(kind="replied").values_list("message_id", flat=True)) == [answered.pk]


def test_an_inbound_email_without_the_webhook_secret_stores_nothing(client):
    Inbox.objects.create(name="Replies", channel="email", address="replies@mailroom.test")
    response = client.post(
        "/webhooks/anymail/postmark/inbound/",
        json.dumps(postmark_inbound()),
        content_type="application/json",
        headers=basic_auth("hook-user:wrong"),
    )
    assert response.status_code in (400, 401, 403)
    assert not InboxMessage.objects.exists()


def test_an_esp_event_with_a_nul_character_is_kept_not_retried_forever(client):
    """Refusing it would make the ESP retry it forever: the unstorable character is replaced."""
    sent_email(PM_ID)
    bounce = {**PM_EVENTS["bounced"], "Description": "bad\u0000text", "MessageID": PM_ID, "Tag": "", "Metadata": {}}
    response = client.post(
        "/webhooks/anymail/postmark/tracking/", json.dumps(bounce), content_type="application/json", headers=basic_auth()
    )
    assert response.status_code == 200
    assert webhook_events().get().payload["description"] == "bad\ufffdtext"


def test_mailgun_needs_only_its_signing_key(client, settings):
    """Mailgun's signature is its credential: without the basic-auth secret it is still accepted."""
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    message = sent_email(MG_ID)
    assert post_mailgun(client, "delivered").status_code == 200
    assert webhook_events().get().message == message
