"""An SMS reply is activity (seed 004's "conversation reopened on customer response"): it
counts as `replied` on the last message sent to the contact and becomes the
`message_replied` event, which flows can exit on; a STOP reply is neither."""

import pytest

from marketing.events import track_event
from marketing.models import AutomationRun, Event
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import DeliveryEvent, Inbox, OutboxMessage, Provider
from messaging.views.webhooks import signature_for
from tests.marketing.test_automations import automation

pytestmark = pytest.mark.django_db


@pytest.fixture
def sms(settings):
    settings.MAILROOM_SECRETS = {"HOOK": "whsec-test"}
    Inbox.objects.create(name="Main number", channel="sms", address="+33700000000")
    return Provider.objects.create(name="SMS", channel="sms", kind="sandbox", config={"webhook_secret": "HOOK"})


def reply(client, provider, text: str, sid: str):
    body = f"From=%2B33612345678&To=%2B33700000000&Body={text}&MessageSid={sid}"
    return client.post(
        f"/webhooks/providers/{provider.pk}/inbound",
        body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Mailroom-Signature": signature_for("whsec-test", body.encode())},
    )


@pytest.fixture
def ada(catalog):
    contact = create_contact(actor=None, phone="+33612345678", first_name="Ada")
    subscribe(actor=None, contact=contact, topic=catalog["promotions"], channel="sms")
    return contact


def test_a_reply_counts_on_the_last_message_and_becomes_an_event_once(client, sms, ada):
    # given an SMS sent to Ada
    enqueue_message(channel="sms", contact=ada, text="Your cart is waiting")
    send_due_messages()
    last = OutboxMessage.objects.get(status="sent")
    # when she answers, and the provider delivers the webhook twice
    assert reply(client, sms, "Yes+please", "SM-r1").status_code == 200
    reply(client, sms, "Yes+please", "SM-r1")
    # then one replied event on that message and one message_replied event for her
    assert list(DeliveryEvent.objects.filter(kind="replied").values_list("message_id", flat=True)) == [last.pk]
    event = Event.objects.get(name="message_replied")
    assert event.contact == ada and event.properties == {"channel": "sms"} and event.source == "reply"


def test_a_stop_reply_is_not_counted_as_a_reply(client, sms, ada):
    enqueue_message(channel="sms", contact=ada, text="Hello")
    send_due_messages()
    reply(client, sms, "STOP", "SM-r2")
    assert not DeliveryEvent.objects.filter(kind="replied").exists() and not Event.objects.filter(name="message_replied").exists()


def test_a_flow_can_end_when_the_contact_answers(client, sms, ada, clock, tick, committed):
    flow = automation(
        trigger={"events": ["cart_abandoned"]},
        steps=[{"kind": "wait", "config": {"hours": 24}}, {"kind": "send", "config": {"template": "cart-abandoned", "channel": "sms"}}],
        exit_events=[{"event": "message_replied"}],
    )
    with committed():
        track_event(contact=ada, name="cart_abandoned")
    tick()
    with committed():
        reply(client, sms, "On+my+way", "SM-r3")
    run = flow.runs.get()
    assert run.status == AutomationRun.Status.EXITED and run.exit_reason == "exit event message_replied"
