"""Every preset end to end on the sandbox provider, with the clock moved forward: the right
messages at the right times, none after an exit. Plus the signed Stripe-style webhook."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from marketing.automations.actions import create_automation_from_preset, update_automation
from marketing.automations.presets import PRESETS
from marketing.automations.webhooks import sign_payload
from marketing.events import record_order, track_event
from marketing.models import AutomationRun, Order, PaymentWebhookEvent
from marketing.segments.actions import refresh_segment
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.models import OutboxMessage
from tests.marketing.conftest import START, go_live, inbox

pytestmark = pytest.mark.django_db
SECRET = "whsec_test"


def preset(key: str):
    return go_live(create_automation_from_preset(actor=None, key=key))


def person(topics, email="ada@example.com", consent=(), **fields):
    contact = create_contact(actor=None, email=email, first_name="Ada", **fields)
    for key in consent:
        subscribe(actor=None, contact=contact, topic=topics[key])
    return contact


def subjects(to="ada@example.com") -> list[str]:
    return [m.subject for m in inbox(to)]


def sent_at(to="ada@example.com") -> list[datetime]:
    return list(OutboxMessage.objects.filter(to_address=to, status="sent").order_by("id").values_list("sent_at", flat=True))


def test_every_preset_creates_an_editable_draft(catalog):
    for key in PRESETS:
        automation = create_automation_from_preset(actor=None, key=key)
        assert automation.state == "draft" and automation.preset == key and automation.steps.exists()
    edited = update_automation(actor=None, automation=automation, name="Mine", frequency_cap=2)
    assert (edited.name, edited.frequency_cap) == ("Mine", 2)


def test_welcome_is_sent_once_per_contact(catalog, clock, tick, committed):
    preset("welcome")
    ada = person(catalog, consent=["product-news"])
    with committed():
        track_event(contact=ada, name="user_registered")
        track_event(contact=ada, name="user_registered")
    tick()
    assert subjects() == ["Welcome to Mailroom, Ada!"]


def test_enrollment_confirms_the_course(catalog, clock, tick, committed):
    preset("enrollment")
    ada = person(catalog)
    with committed():
        track_event(contact=ada, name="enrollment", properties={"course": {"title": "Django 101", "url": "https://lms.test/c/1"}})
    tick()
    [message] = inbox()
    assert "Django 101" in message.body_text + message.subject


def test_post_demo_follow_up_one_hour_later_unless_they_buy(catalog, clock, tick, committed):
    preset("post-demo")
    ada = person(catalog, consent=["product-news"])
    bob = person(catalog, "bob@example.com", consent=["product-news"])
    with committed():
        track_event(contact=ada, name="demo_attended", properties={"demo": {"date": "3 March"}})
        track_event(contact=bob, name="demo_attended")
    tick()
    clock.shift(timedelta(minutes=30))
    with committed():
        record_order(contact=bob, external_id="B-1", amount="10", status="paid")
    clock.shift(timedelta(minutes=30))
    tick()
    assert len(inbox("ada@example.com")) == 1 and sent_at() == [START + timedelta(hours=1)]
    assert inbox("bob@example.com") == []


def test_weekly_progress_every_monday_at_nine_local_with_the_contacts_numbers(catalog, clock, tick):
    automation = preset("weekly-progress")
    paris = person(catalog, "paris@example.com", consent=["progress-reports"], timezone="Europe/Paris")
    person(catalog, "notenrolled@example.com", consent=["progress-reports"])
    track_event(contact=paris, name="enrollment", occurred_at=START - timedelta(days=30))
    for minutes in (20, 25, 15):
        track_event(contact=paris, name="lesson_completed", properties={"minutes": minutes}, occurred_at=START)
    refresh_segment(segment=automation.audience)
    # when Monday 09:00 Paris (08:00 UTC) comes
    clock.move_to(datetime(2026, 3, 9, 7, 59, tzinfo=UTC))
    tick()
    assert inbox() == []
    clock.move_to(datetime(2026, 3, 9, 8, 0, tzinfo=UTC))
    tick()
    tick()
    # then only the enrolled contact gets one report with this week's numbers
    [message] = inbox()
    assert message.to_address == "paris@example.com"
    assert message.subject == "Your week: 3 lessons completed"
    assert "60" in message.body_text  # minutes


def test_new_content_is_announced_to_every_enrolled_contact(catalog, clock, tick, committed):
    automation = preset("new-content")
    author = person(catalog, "author@example.com")
    with committed():
        for email in ("a@example.com", "b@example.com"):
            student = person(catalog, email, consent=["newsletter"])
            track_event(contact=student, name="enrollment")
    person(catalog, "outsider@example.com", consent=["newsletter"])
    refresh_segment(segment=automation.audience)
    with committed():
        track_event(contact=author, name="content_published", properties={"content": {"title": "Lesson 9", "url": "https://lms.test/9"}})
    tick()
    assert sorted(m.to_address for m in inbox()) == ["a@example.com", "b@example.com"]
    assert all("Lesson 9" in m.body_text for m in inbox())


def test_order_paid_sends_confirmation_invoice_and_activation_once(catalog, clock, tick, committed):
    preset("order-paid")
    ada = person(catalog)
    details = {"invoice_url": "https://pay.test/inv/1", "activation_url": "https://app.test/activate/1"}
    with committed():
        record_order(contact=ada, external_id="A-1", amount="49.00", status="paid", details=details)
        record_order(contact=ada, external_id="A-1", amount="49.00", status="paid", details=details)  # replayed
    tick()
    tick()
    messages = inbox()
    assert len(messages) == 3
    assert "A-1" in messages[0].subject + messages[0].body_text and "49.00" in messages[0].body_text
    assert "https://pay.test/inv/1" in messages[1].body_text
    assert "https://app.test/activate/1" in messages[2].body_text
    ada.refresh_from_db()
    assert ada.attributes["activated"] is True and "customer" in ada.attributes["tags"]


def test_shipment_notification_carries_the_tracking_link(catalog, clock, tick, committed):
    preset("order-shipped")
    ada = person(catalog)
    with committed():
        record_order(contact=ada, external_id="A-2", amount="10", status="paid")
        record_order(
            contact=ada,
            external_id="A-2",
            amount="10",
            status="fulfilled",
            details={"shipment": {"carrier": "Colissimo", "tracking_url": "https://track.test/XY1"}},
        )
    tick()
    [message] = inbox()
    assert message.subject == "Your order A-2 is on its way" and "https://track.test/XY1" in message.body_text


def test_payment_failed_sends_the_retry_link(catalog, clock, tick, committed):
    preset("payment-failed")
    ada = person(catalog)
    with committed():
        record_order(
            contact=ada, external_id="A-3", amount="10", status="payment_failed", details={"retry_url": "https://pay.test/retry/3"}
        )
    tick()
    [message] = inbox()
    assert "A-3" in message.subject and "https://pay.test/retry/3" in message.body_text


def test_booking_confirmation(catalog, clock, tick, committed):
    preset("booking-confirmation")
    ada = person(catalog, timezone="Europe/Paris")
    with committed():
        track_event(
            contact=ada, name="appointment_booked", properties={"appointment_id": "X", "appointment_at": "2026-03-10T14:00:00+00:00"}
        )
    tick()
    [message] = inbox()
    assert "2026-03-10 15:00" in message.body_text  # in the contact's time zone


def appointment(contact, name, at: datetime, appointment_id="X"):
    return track_event(contact=contact, name=name, properties={"appointment_id": appointment_id, "appointment_at": at.isoformat()})


def test_appointment_reminders_24h_and_2h_before(catalog, clock, tick, committed):
    preset("appointment-reminders")
    ada = person(catalog, consent=["reminders"])
    at = START + timedelta(days=3)
    with committed():
        appointment(ada, "appointment_booked", at)
    tick()
    for moment in (at - timedelta(hours=24, minutes=1), at - timedelta(hours=24), at - timedelta(hours=2), at + timedelta(hours=1)):
        clock.move_to(moment)
        tick()
    assert sent_at() == [at - timedelta(hours=24), at - timedelta(hours=2)]
    assert subjects() == ["Reminder: your appointment is tomorrow", "Your appointment starts in 2 hours"]


def test_appointment_reminders_are_cancelled_when_the_appointment_is(catalog, clock, tick, committed):
    preset("appointment-reminders")
    ada = person(catalog, consent=["reminders"])
    at = START + timedelta(days=3)
    with committed():
        appointment(ada, "appointment_booked", at)
    tick()
    clock.move_to(at - timedelta(hours=24))
    tick()
    with committed():
        appointment(ada, "appointment_cancelled", at)
    clock.move_to(at)
    tick()
    assert sent_at() == [at - timedelta(hours=24)]  # the 2 h reminder never went
    assert AutomationRun.objects.get().status == "exited"


def test_appointment_reminders_are_planned_again_when_the_appointment_moves(catalog, clock, tick, committed):
    preset("appointment-reminders")
    ada = person(catalog, consent=["reminders"])
    first, moved = START + timedelta(days=3), START + timedelta(days=5)
    with committed():
        appointment(ada, "appointment_booked", first)
    tick()
    clock.shift(timedelta(hours=1))
    with committed():
        appointment(ada, "appointment_rescheduled", moved)
    tick()
    clock.move_to(moved + timedelta(hours=1))
    for moment in (first - timedelta(hours=24), first - timedelta(hours=2), moved - timedelta(hours=24), moved - timedelta(hours=2)):
        clock.move_to(moment)
        tick()
    assert sent_at() == [moved - timedelta(hours=24), moved - timedelta(hours=2)]
    assert sorted(AutomationRun.objects.values_list("status", flat=True)) == ["completed", "exited"]


def test_seed_004_statuses_confirmed_then_canceled_plan_and_cancel_the_reminders(catalog, clock, tick, committed):
    # given a host whose appointments go pending → confirmed → canceled (the adapter emits
    # appointment_<status>), with the confirmation and the reminders presets
    preset("booking-confirmation")
    preset("appointment-reminders")
    ada = person(catalog, consent=["reminders"])
    at = START + timedelta(days=3)
    with committed():
        appointment(ada, "appointment_booked", at)
    tick()
    # when it is confirmed: the reminders are planned once (the booked run gives way)
    with committed():
        appointment(ada, "appointment_confirmed", at)
    tick()
    assert AutomationRun.objects.filter(automation__preset="appointment-reminders", status="active").count() == 1
    clock.move_to(at - timedelta(hours=24))
    tick()
    # and canceled, spelt as seed 004 does: the 2 h reminder never goes
    with committed():
        appointment(ada, "appointment_canceled", at)
    clock.move_to(at)
    tick()
    # then one confirmation (booked and confirmed are one appointment), one reminder
    confirmation, *reminders = subjects()
    assert confirmation.startswith("Your appointment is confirmed") and reminders == ["Reminder: your appointment is tomorrow"]
    assert not AutomationRun.objects.filter(automation__preset="appointment-reminders", status="active").exists()


def test_a_reminder_already_past_is_skipped(catalog, clock, tick, committed):
    preset("appointment-reminders")
    ada = person(catalog, consent=["reminders"])
    at = START + timedelta(hours=5)  # booked 5 h ahead: no 24 h reminder, only the 2 h one
    with committed():
        appointment(ada, "appointment_booked", at)
    tick()
    clock.move_to(at - timedelta(hours=2))
    tick()
    assert sent_at() == [at - timedelta(hours=2)]
    assert subjects() == ["Your appointment starts in 2 hours"]


def test_cart_abandoned_1h_and_24h_and_nothing_after_an_order(catalog, clock, tick, committed):
    preset("cart-abandoned")
    ada = person(catalog, consent=["promotions"])
    bob = person(catalog, "bob@example.com", consent=["promotions"])
    cart = {"cart": {"url": "https://shop.test/cart"}, "item": {"name": "Mug", "price": "12"}}
    with committed():
        track_event(contact=ada, name="cart_abandoned", properties=cart)
        track_event(contact=bob, name="cart_abandoned", properties=cart)
    tick()
    for hours in (1, 2, 24, 30):
        clock.move_to(START + timedelta(hours=hours))
        if hours == 2:
            with committed():
                record_order(contact=bob, external_id="B-9", amount="12", status="paid")
        tick()
    assert sent_at() == [START + timedelta(hours=1), START + timedelta(hours=24)]
    assert len(inbox("bob@example.com")) == 1  # the 1 h reminder, then he ordered
    assert "https://shop.test/cart" in inbox()[0].body_text


def test_reengagement_offer_after_7_days_and_dormant_at_14(catalog, clock, tick, committed):
    preset("re-engagement")
    keen = person(catalog, consent=["promotions"])
    shy = person(catalog, "shy@example.com")  # no promotional consent
    busy = person(catalog, "busy@example.com", consent=["promotions"])
    with committed():
        for contact in (keen, shy, busy):
            track_event(contact=contact, name="lesson_completed")
    tick()
    clock.move_to(START + timedelta(days=5))
    with committed():
        track_event(contact=busy, name="lesson_completed")  # active again: the clock restarts for busy
    tick()
    clock.move_to(START + timedelta(days=7))
    tick()
    assert [m.to_address for m in inbox()] == ["ada@example.com"]  # consent checked: shy gets nothing
    clock.move_to(START + timedelta(days=14))
    tick()
    for contact in (keen, shy, busy):
        contact.refresh_from_db()
    assert keen.attributes["lifecycle_stage"] == shy.attributes["lifecycle_stage"] == "dormant"
    assert "lifecycle_stage" not in busy.attributes
    assert OutboxMessage.objects.filter(to_address="shy@example.com").count() == 0


# --- the signed Stripe-style webhook ---------------------------------------------------------
def stripe_event(event_id="evt_1", kind="checkout.session.completed", order_id="S-1"):
    return {
        "id": event_id,
        "type": kind,
        "data": {
            "object": {
                "id": "cs_1",
                "amount_total": 4900,
                "currency": "eur",
                "customer_email": "ada@example.com",
                "metadata": {"order_id": order_id, "invoice_url": "https://pay.test/i/S-1", "retry_url": "https://pay.test/r/S-1"},
            }
        },
    }


def post_webhook(client, payload, *, secret=SECRET, timestamp=None):
    body = json.dumps(payload).encode()
    return client.post(
        reverse("marketing:webhook-stripe"),
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign_payload(payload=body, secret=secret, timestamp=timestamp)},
    )


def test_stripe_webhook_pays_the_order_once_and_a_replay_does_nothing(catalog, clock, tick, client, settings, committed):
    settings.MAILROOM_SECRETS = {"STRIPE_WEBHOOK": SECRET}
    preset("order-paid")
    person(catalog)
    with committed():
        first = post_webhook(client, stripe_event())
        replay = post_webhook(client, stripe_event())
    tick()
    assert (first.status_code, first.json()["replay"], replay.status_code, replay.json()["replay"]) == (200, False, 200, True)
    order = Order.objects.get(external_id="S-1")
    assert (order.status, str(order.amount)) == ("paid", "49.00")
    assert len(inbox()) == 3 and PaymentWebhookEvent.objects.count() == 1


def test_stripe_webhook_with_a_bad_or_stale_signature_is_refused_and_changes_nothing(catalog, clock, client, settings):
    settings.MAILROOM_SECRETS = {"STRIPE_WEBHOOK": SECRET}
    wrong = post_webhook(client, stripe_event(), secret="whsec_other")
    stale = post_webhook(client, stripe_event(), timestamp=int(START.timestamp()) - 600)
    assert (wrong.status_code, stale.status_code) == (403, 403)
    assert not Order.objects.exists() and not PaymentWebhookEvent.objects.exists()


def test_stripe_payment_failure_sends_the_retry_link(catalog, clock, tick, client, settings, committed):
    settings.MAILROOM_SECRETS = {"STRIPE_WEBHOOK": SECRET}
    preset("payment-failed")
    person(catalog)
    with committed():
        assert post_webhook(client, stripe_event("evt_2", "payment_intent.payment_failed", "S-2")).status_code == 200
    tick()
    [message] = inbox()
    assert "https://pay.test/r/S-1" in message.body_text
