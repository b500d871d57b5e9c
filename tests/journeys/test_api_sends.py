"""Messages sent through the API on the wire: a single send (template in the contact's
language, or raw content with merge tags) and a bulk send, by email through every email
provider kind and by SMS/push through the HTTP provider and the sandbox; then a person opens,
clicks and unsubscribes, and the stats API shows exactly those events."""

import pytest

from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage
from tests.journeys.conftest import (
    FOOTER_WORDS,
    SHOP,
    SMS_WORDS,
    WORDS,
    assert_complete_email,
    assert_complete_text,
    bilingual_template,
    follow,
    link_targets,
    merged,
    people,
)

pytestmark = pytest.mark.django_db

RAW_HTML = (
    '<p>Dear {{ contact.first_name }}, order {{ order }} ships today.</p><p><a href="https://shop.example.com/orders/7">Track it</a></p>'
)


def events(ops) -> dict[str, int]:
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(ops)
    return api.get("/api/v1/stats/messages/").json()["events"]


def all_sent():
    assert [(m.to_address, m.error) for m in OutboxMessage.objects.exclude(status=OutboxMessage.Status.SENT)] == []


def test_api_single_send_journey(email_wire, key_client, marketer, ops, newsletter, client):
    api = key_client("Ops")
    ada, julie = people(newsletter)
    bilingual_template(marketer, newsletter)
    # when an integration sends the template to each contact, and raw content to Ada
    for contact in (ada, julie):
        response = api.post("/api/v1/messages/", {"contact": contact.pk, "template": "journey", "topic": "newsletter"}, format="json")
        assert response.status_code == 201, response.content
    raw = {"to": "ada@example.com", "contact": ada.pk, "subject": "Order {{ order }}", "html": RAW_HTML, "context": {"order": "A-7"}}
    assert api.post("/api/v1/messages/", raw, format="json").status_code == 201
    send_due_messages()
    all_sent()
    # then each got the template in their language, complete (a marketing topic: footer, one-click)
    for contact in (ada, julie):
        received = next(r for r in email_wire.received() if r.to == contact.email and r.subject != "Order A-7")
        assert_complete_email(received, marketing=True, merged=merged(contact), words=WORDS[contact.locale] + FOOTER_WORDS[contact.locale])
        assert set(link_targets(received).values()) == {SHOP}
    # and the raw message, merged, tracked, without the marketing parts (no topic: transactional)
    order = next(r for r in email_wire.received() if r.subject == "Order A-7")
    assert_complete_email(order, marketing=False, merged=("Dear Ada", "A-7"))
    assert set(link_targets(order).values()) == {"https://shop.example.com/orders/7"}
    # when Julie opens, clicks and unsubscribes; and Ada opens and clicks her order mail
    done = follow(next(r for r in email_wire.received() if r.to == julie.email), client)
    assert list(done.clicks.values()) == [SHOP]
    done = follow(order, client, unsubscribe=False)
    assert list(done.clicks.values()) == ["https://shop.example.com/orders/7"]
    # then the stats API shows exactly those events
    got = events(ops)
    assert (got["opened"], got["clicked"], got["unsubscribed"]) == (2, 2, 1)
    assert got["delivered"] == (3 if email_wire.kind == "sandbox" else 0)


def test_api_bulk_send_journey(email_wire, key_client, marketer, ops, newsletter, client):
    api = key_client("Ops")
    ada, julie = people(newsletter)
    bilingual_template(marketer, newsletter)
    body = {"key": "spring-2026", "contacts": [ada.pk, julie.pk], "template": "journey", "topic": "newsletter"}
    response = api.post("/api/v1/messages/bulk/", body, format="json")
    assert response.status_code == 202 and response.json() == {"queued": 2, "deduplicated": 0, "skipped": {}}
    send_due_messages()
    all_sent()
    for contact in (ada, julie):
        received = email_wire.to(contact.email)
        assert_complete_email(received, marketing=True, merged=merged(contact), words=WORDS[contact.locale] + FOOTER_WORDS[contact.locale])
    done = follow(email_wire.to(ada.email), client)
    assert list(done.clicks.values()) == [SHOP]
    got = events(ops)
    assert (got["opened"], got["clicked"], got["unsubscribed"]) == (1, 1, 1)


def test_api_single_and_bulk_sms_and_push_journey(text_wire, key_client, marketer, newsletter):
    api = key_client("Ops")
    ada, julie = people(newsletter, channels=("sms", "push"))
    bilingual_template(marketer, newsletter, key="journey-sms", channel="sms")
    # a single SMS from the template, in each contact's language
    for contact in (ada, julie):
        body = {"channel": "sms", "contact": contact.pk, "template": "journey-sms", "topic": "newsletter"}
        assert api.post("/api/v1/messages/", body, format="json").status_code == 201
    # a bulk SMS of raw text with merge tags, and a push
    bulk = {"channel": "sms", "key": "flash", "contacts": [ada.pk], "text": "Flash sale, {{ contact.first_name }}: -20% today"}
    assert api.post("/api/v1/messages/bulk/", bulk, format="json").json()["queued"] == 1
    push = {
        "channel": "push",
        "contact": julie.pk,
        "subject": "Hi {{ contact.first_name }}",
        "text": "Your {{ thing }} is ready",
        "context": {"thing": "basket"},
    }
    assert api.post("/api/v1/messages/", push, format="json").status_code == 201
    send_due_messages()
    all_sent()
    received = text_wire.received()
    sms = {r.to: r for r in received if r.channel == "sms" and "Flash" not in r.text}
    for contact in (ada, julie):
        assert_complete_text(sms[contact.phone], merged=merged(contact), words=SMS_WORDS[contact.locale])
        assert "http://testserver/p/" in sms[contact.phone].text
    flash = next(r for r in received if "Flash" in r.text)
    assert flash.to == ada.phone
    assert_complete_text(flash, merged=("Flash sale, Ada: -20% today",))
    (notification,) = [r for r in received if r.channel == "push"]
    assert notification.to == "push-token-julie"
    assert_complete_text(notification, merged=("Hi Julie", "Your basket is ready"))
