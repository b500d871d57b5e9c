"""The preference center's choices, and what they do to sending."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from messaging.consent import ConsentContext, subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.models import ConsentRecord, Contact, OutboxMessage, SandboxMessage, Subscription, Topic
from messaging.preferences import pause_marketing, set_marketing_frequency

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"
PREFS = "__MAILROOM_PREFERENCES__"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    settings.MAILROOM_BASE_URL = BASE


@pytest.fixture
def subscriber(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    return contact


def news(contact, topic, subject="News"):
    return enqueue_message(channel="email", contact=contact, topic=topic, subject=subject, text="Hello")


def receipt(contact, topic):
    return enqueue_message(channel="email", contact=contact, topic=topic, subject="Your receipt", text="Paid")


def status_of(message: OutboxMessage) -> tuple[str, str]:
    message.refresh_from_db()
    return message.status, message.error


def preferences_client(message: OutboxMessage) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    url = public_link(message.pk, PREFS).removeprefix(BASE)
    assert client.get(url).status_code == 200  # sets the CSRF cookie
    return client, url


def post(client: Client, url: str, **data):
    return client.post(url, data | {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})


# --- the gate --------------------------------------------------------------------------------
def test_a_paused_contact_gets_no_marketing_but_still_gets_receipts(subscriber, newsletter, receipts):
    # given a contact who paused marketing for two weeks
    pause_marketing(actor=None, contact=subscriber, weeks=2, context=ConsentContext())
    promo, paid = news(subscriber, newsletter), receipt(subscriber, receipts)
    # when the queue is sent
    send_due_messages()
    # then the newsletter ends suppressed with the reason, and the receipt goes
    status, error = status_of(promo)
    assert status == "suppressed" and "paused marketing messages until" in error
    assert status_of(paid)[0] == "sent"
    assert list(SandboxMessage.objects.values_list("subject", flat=True)) == ["Your receipt"]


def test_marketing_goes_again_once_the_pause_is_over(subscriber, newsletter):
    pause_marketing(actor=None, contact=subscriber, weeks=1, context=ConsentContext())
    with time_machine.travel(timezone.now() + timedelta(weeks=1, minutes=1)):
        message = news(subscriber, newsletter)
        send_due_messages()
    assert status_of(message)[0] == "sent"


def test_the_weekly_digest_contact_gets_no_single_marketing_email_but_still_gets_receipts(subscriber, newsletter, receipts):
    # every marketing email is held for the Monday digest (messaging.digest); receipts go
    set_marketing_frequency(actor=None, contact=subscriber, frequency="weekly", context=ConsentContext())
    first, second = news(subscriber, newsletter, "Monday"), news(subscriber, newsletter, "Tuesday")
    paid = receipt(subscriber, receipts)
    send_due_messages()
    assert status_of(paid)[0] == "sent"
    assert status_of(first) == status_of(second) == ("suppressed", "held for the weekly digest")
    assert list(SandboxMessage.objects.values_list("subject", flat=True)) == ["Your receipt"]


def test_reminders_on_a_time_sensitive_topic_go_through_a_pause_and_the_weekly_digest(subscriber, newsletter):
    # given a contact on the weekly digest who also paused marketing, subscribed to reminders
    reminders = Topic.objects.create(key="reminders", name="Reminders", kind=Topic.Kind.MARKETING, time_sensitive=True)
    subscribe(actor=None, contact=subscriber, topic=reminders)
    set_marketing_frequency(actor=None, contact=subscriber, frequency="weekly", context=ConsentContext())
    pause_marketing(actor=None, contact=subscriber, weeks=2, context=ConsentContext())
    promo = news(subscriber, newsletter, "Sale")
    tomorrow, soon = news(subscriber, reminders, "Tomorrow at 10:00"), news(subscriber, reminders, "In 2 hours")
    # when the queue is sent
    send_due_messages()
    # then both reminders go and the newsletter is held by the pause
    assert status_of(tomorrow)[0] == "sent" and status_of(soon)[0] == "sent"
    assert status_of(promo)[0] == "suppressed"


def test_a_time_sensitive_topic_still_needs_consent(contact):
    reminders = Topic.objects.create(key="reminders", name="Reminders", kind=Topic.Kind.MARKETING, time_sensitive=True)
    message = news(contact, reminders, "Tomorrow at 10:00")
    send_due_messages()
    status, error = status_of(message)
    assert status == "suppressed" and "no consent" in error


def test_a_topic_unticked_in_the_preference_center_stops_its_queued_and_future_messages(subscriber, newsletter):
    sent = news(subscriber, newsletter)
    send_due_messages()
    queued = enqueue_message(
        channel="email", contact=subscriber, topic=newsletter, subject="Later", text="x", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    client, url = preferences_client(sent)
    post(client, url, locale="fr", action="save")  # nothing ticked
    assert status_of(queued)[0] == "cancelled"
    future = news(subscriber, newsletter)
    send_due_messages()
    status, error = status_of(future)
    assert status == "suppressed" and error == "no consent for this topic on this channel"


# --- the page --------------------------------------------------------------------------------
def test_every_change_in_the_preference_center_writes_a_consent_record(subscriber, newsletter):
    sent = news(subscriber, newsletter)
    send_due_messages()
    client, url = preferences_client(sent)
    response = post(client, url, choice=[f"{newsletter.pk}:email"], frequency="weekly", pause="4", locale="en", action="save")
    assert response.status_code == 200 and "Your preferences are saved." in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.marketing_frequency == "weekly" and subscriber.locale == "en"
    assert timedelta(weeks=4) - timedelta(minutes=1) < subscriber.paused_until - timezone.now() <= timedelta(weeks=4)
    records = ConsentRecord.objects.filter(source="preference_center")
    assert {(r.action, tuple(sorted(r.details))) for r in records} == {
        ("frequency", ("after", "before")),
        ("paused", ("until", "weeks")),
        ("language", ("after", "before")),
    }
    assert all(r.wording_version == "preferences-v1" and r.topic is None for r in records)
    # saving the same choices again changes nothing, so logs nothing
    post(client, url, choice=[f"{newsletter.pk}:email"], frequency="weekly", pause="", locale="en", action="save")
    assert ConsentRecord.objects.filter(source="preference_center").count() == 3


def test_resuming_a_pause_is_logged_and_marketing_goes_again(subscriber, newsletter):
    pause_marketing(actor=None, contact=subscriber, weeks=8, context=ConsentContext())
    sent = receipt(subscriber, newsletter)
    send_due_messages()
    client, url = preferences_client(sent)
    page = client.get(url).content.decode()
    assert 'value="0"' in page  # "Resume now" is offered while paused
    post(client, url, choice=[f"{newsletter.pk}:email"], pause="0", locale="fr", action="save")
    assert Contact.objects.get(pk=subscriber.pk).paused_until is None
    assert ConsentRecord.objects.filter(action="resumed").count() == 1


def test_unsubscribe_from_everything_is_one_click_on_the_preference_center(subscriber, newsletter):
    sent = news(subscriber, newsletter)
    send_due_messages()
    client, url = preferences_client(sent)
    response = post(client, url, choice=[f"{newsletter.pk}:email"], action="unsubscribe_all")
    assert "désabonné de tous nos messages marketing" in response.content.decode()  # the contact reads French
    assert not Subscription.objects.filter(contact=subscriber, status="subscribed").exists()
    assert ConsentRecord.objects.filter(action="withdrawn", source="preference_center").count() == 1


def test_the_preference_center_is_labelled_for_screen_readers_and_keyboards(subscriber, newsletter):
    sent = news(subscriber, newsletter)
    send_due_messages()
    client, url = preferences_client(sent)
    page = client.get(url).content.decode()
    assert page.count("<legend>") == 4 and '<label for="pause">' in page and '<label for="locale">' in page
    assert '<span class="visually-hidden">Newsletter: </span>' in page  # each checkbox says its topic
    assert 'name="viewport"' in page and "tabindex" not in page  # native controls, natural order


def test_an_out_of_range_pause_or_frequency_from_a_forged_form_is_ignored(subscriber, newsletter):
    sent = news(subscriber, newsletter)
    send_due_messages()
    client, url = preferences_client(sent)
    post(client, url, choice=[f"{newsletter.pk}:email"], pause="520", frequency="hourly", locale="xx", action="save")
    subscriber.refresh_from_db()
    assert (subscriber.paused_until, subscriber.marketing_frequency, subscriber.locale) == (None, "all", "fr")
    assert not ConsentRecord.objects.filter(source="preference_center").exists()
