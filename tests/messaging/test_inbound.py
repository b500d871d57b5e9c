"""Webhooks, inbound replies, tracked clicks and the process_notifications command."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery.inbound import HANDLERS
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import (
    ConsentRecord,
    DeliveryEvent,
    Inbox,
    InboxMessage,
    OutboxMessage,
    Provider,
    SandboxMessage,
    Subscription,
    Suppression,
)
from messaging.tasks import process_stranded_inbound
from messaging.views.webhooks import signature_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SECRETS = {"HOOK": "whsec-test"}


@pytest.fixture
def sms_provider():
    return Provider.objects.create(name="SMS", channel="sms", kind="sandbox", config={"webhook_secret": "HOOK"})


def post_signed(client, url, payload, *, secret="whsec-test", content_type="application/json"):
    body = json.dumps(payload).encode() if content_type == "application/json" else payload.encode()
    return client.post(url, body, content_type=content_type, headers={"X-Mailroom-Signature": signature_for(secret, body)})


def sent_sms(provider) -> OutboxMessage:
    message = enqueue_message(channel="sms", to="+33612345678", text="Hello")
    send_due_messages()
    message.refresh_from_db()
    assert message.provider == provider
    return message


def test_a_signed_bounce_event_is_recorded_once_and_suppresses_the_number(client, sms_provider):
    message = sent_sms(sms_provider)
    url = f"/webhooks/providers/{sms_provider.pk}/events"
    payload = {"id": "evt-1", "type": "bounced", "message_id": message.provider_message_id}
    assert post_signed(client, url, payload).json() == {"status": "recorded"}
    assert post_signed(client, url, payload).json() == {"status": "duplicate"}  # replayed webhook
    assert DeliveryEvent.objects.filter(kind="bounced", message=message).count() == 1
    assert Suppression.objects.get(address="+33612345678", channel="sms").reason == "hard_bounce"


def test_twilio_style_status_callbacks_are_understood(client, sms_provider):
    message = sent_sms(sms_provider)
    body = f"MessageSid={message.provider_message_id}&MessageStatus=delivered"
    response = post_signed(client, f"/webhooks/providers/{sms_provider.pk}/events", body, content_type="application/x-www-form-urlencoded")
    assert response.json() == {"status": "recorded"}
    # the provider's own event, besides the one the sandbox recorded when it took the message
    assert DeliveryEvent.objects.exclude(external_id=f"sandbox:{message.pk}").get().kind == "delivered"


@pytest.mark.parametrize("signature", ["", "sha256=deadbeef", None])
def test_a_bad_signature_gets_403_and_stores_nothing(client, sms_provider, signature):
    body = json.dumps({"id": "evt-x", "type": "complained", "message_id": "x"}).encode()
    headers = {} if signature is None else {"X-Mailroom-Signature": signature}
    response = client.post(f"/webhooks/providers/{sms_provider.pk}/events", body, content_type="application/json", headers=headers)
    assert response.status_code == 403
    assert not DeliveryEvent.objects.exists() and not Suppression.objects.exists()


def test_a_signature_made_with_another_secret_is_refused(client, sms_provider):
    response = post_signed(client, f"/webhooks/providers/{sms_provider.pk}/events", {"id": "e", "type": "delivered"}, secret="guess")
    assert response.status_code == 403


def test_malformed_event_bodies_get_400(client, sms_provider):
    url = f"/webhooks/providers/{sms_provider.pk}/events"
    assert post_signed(client, url, {"type": "exploded", "id": "1"}).status_code == 400
    assert post_signed(client, url, {"type": "delivered"}).status_code == 400
    assert not DeliveryEvent.objects.exists()


def test_a_stop_reply_unsubscribes_and_suppresses_the_sender(client, sms_provider, newsletter):
    contact = create_contact(actor=None, phone="+33612345678")
    subscribe(actor=None, contact=contact, topic=newsletter, channel="sms")
    Inbox.objects.create(name="Main number", channel="sms", address="+33700000000")
    body = "From=%2B33612345678&To=%2B33700000000&Body=Stop&MessageSid=SM-in-1"
    url = f"/webhooks/providers/{sms_provider.pk}/inbound"
    response = post_signed(client, url, body, content_type="application/x-www-form-urlencoded")
    assert response.json() == {"status": "handled"}
    inbound = InboxMessage.objects.get()
    assert (inbound.contact, inbound.result) == (contact, "unsubscribed")
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"
    assert Suppression.objects.filter(address="+33612345678", channel="sms", reason="unsubscribe").exists()
    # the same webhook again does nothing
    assert post_signed(client, url, body, content_type="application/x-www-form-urlencoded").json() == {"status": "duplicate"}


def failing_handler(inbound):
    raise RuntimeError("host app is down")


def test_a_failing_handler_keeps_the_message_and_can_be_rerun(client, sms_provider, monkeypatch):
    monkeypatch.setitem(HANDLERS, "tests.messaging.test_inbound.failing_handler", "a host app's handler")  # registered by its app
    Inbox.objects.create(name="Support", channel="sms", address="+33700000001", handler="tests.messaging.test_inbound.failing_handler")
    body = "From=%2B33612345678&To=%2B33700000001&Body=Hello&MessageSid=SM-in-2"
    post_signed(client, f"/webhooks/providers/{sms_provider.pk}/inbound", body, content_type="application/x-www-form-urlencoded")
    inbound = InboxMessage.objects.get()
    assert inbound.status == "failed" and "host app is down" in inbound.result
    Inbox.objects.update(handler="messaging.delivery.inbound.handle_stop_words")
    out = io.StringIO()
    call_command("process_notifications", "--inbox-only", stdout=out)
    inbound.refresh_from_db()
    assert inbound.status == "handled" and "1 failed handlers re-run" in out.getvalue()


def test_tracked_links_redirect_only_to_stored_urls_and_record_the_click(client):
    message = enqueue_message(channel="email", to="ada@example.com", subject="Hi", html='<a href="https://shop.example.com/sale">Sale</a>')
    send_due_messages()
    html = SandboxMessage.objects.get().body_html
    click_url = html.split('href="')[1].split('"')[0]
    assert click_url.startswith("http://127.0.0.1:8000/t/") and "shop.example.com" not in click_url
    path = click_url.removeprefix("http://127.0.0.1:8000")
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == "https://shop.example.com/sale"
    assert DeliveryEvent.objects.get(kind="clicked").message_id == message.pk
    # a tampered token is a plain 400 and an unknown link a plain 404, never a redirect
    link_id, token = path.strip("/").split("/")[1:3]
    assert client.get(f"/t/{link_id}/{token[:-2]}xx/").status_code == 400
    assert client.get(f"/t/999999/{token}/").status_code == 404


def test_process_notifications_sends_due_messages_by_kind():
    enqueue_message(channel="email", to="a@example.com", text="hi")
    enqueue_message(channel="sms", to="+33612345678", text="hi")
    out = io.StringIO()
    call_command("process_notifications", "--outbox-only", "--kind", "sms", stdout=out)
    assert "outbox: 1 messages handled" in out.getvalue()
    assert OutboxMessage.objects.get(channel="email").status == "queued"


def test_process_notifications_retry_failed_requeues_recent_failures():
    message = enqueue_message(channel="email", to="a@example.com", text="hi")
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed", error="boom")
    out = io.StringIO()
    call_command("process_notifications", "--retry-failed", "--max-age-hours", "12", stdout=out)
    message.refresh_from_db()
    assert message.status == "sent" and "requeued 1 failed messages" in out.getvalue()


def test_process_notifications_refuses_contradictory_flags():
    with pytest.raises(CommandError, match="exclude each other"):
        call_command("process_notifications", "--inbox-only", "--outbox-only")


def stored_before_a_crash(*, body: str, minutes_ago: int, sid: str, contact=None) -> InboxMessage:
    """What receive_inbound leaves when its process dies after storing, before the handler."""
    from datetime import timedelta

    from django.utils import timezone

    inbound = InboxMessage.objects.create(
        channel="sms", from_address="+33612345678", to_address="+33700000000", body=body, external_id=sid, contact=contact
    )
    InboxMessage.objects.filter(pk=inbound.pk).update(received_at=timezone.now() - timedelta(minutes=minutes_ago))
    return inbound


def test_a_stop_reply_left_received_by_a_crash_is_handled_by_the_sweep_exactly_once(settings, newsletter):
    settings.MAILROOM_INBOUND_STRANDED_MINUTES = 10
    contact = create_contact(actor=None, phone="+33612345678")
    subscribe(actor=None, contact=contact, topic=newsletter, channel="sms")
    Inbox.objects.create(name="Main number", channel="sms", address="+33700000000")
    stranded = stored_before_a_crash(body="STOP", minutes_ago=11, sid="SM-crash-1", contact=contact)
    fresh = stored_before_a_crash(body="STOP", minutes_ago=1, sid="SM-fresh-1", contact=contact)  # its own process may still run it
    # when the sweep runs
    assert process_stranded_inbound() == 1
    # then the stranded STOP unsubscribed the sender, and the fresh one is left alone
    stranded.refresh_from_db()
    fresh.refresh_from_db()
    assert (stranded.status, stranded.result) == ("handled", "unsubscribed")
    assert fresh.status == "received" and fresh.result == ""
    assert Subscription.objects.get(contact=contact).status == "unsubscribed"
    assert Suppression.objects.filter(address="+33612345678", channel="sms", reason="unsubscribe").count() == 1
    consents = ConsentRecord.objects.count()
    # a second sweep handles nothing again
    assert process_stranded_inbound() == 0
    assert ConsentRecord.objects.count() == consents


def test_a_stranded_reply_counts_once_on_the_message_it_answers(settings, sms_provider):
    settings.MAILROOM_INBOUND_STRANDED_MINUTES = 10
    contact = create_contact(actor=None, phone="+33612345678")
    message = sent_sms(sms_provider)
    OutboxMessage.objects.filter(pk=message.pk).update(contact=contact)
    stored_before_a_crash(body="Thanks!", minutes_ago=30, sid="SM-crash-2", contact=contact)
    assert process_stranded_inbound() == 1
    assert process_stranded_inbound() == 0
    assert DeliveryEvent.objects.filter(message=message, kind="replied").count() == 1
    assert InboxMessage.objects.get().status == "handled"


def test_the_stranded_inbound_sweep_is_scheduled_every_few_minutes():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="messaging.tasks.process_stranded_inbound")
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 5
