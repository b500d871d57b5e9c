"""Issue 16, invariant 6 on the public preference center (review): a forged form value is
ignored or refused, never a 500."""

import pytest

from marketing.automations.actions import create_automation
from messaging.consent import subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from tests.messaging.test_preferences import BASE, post, preferences_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    settings.MAILROOM_BASE_URL = BASE


@pytest.mark.parametrize("pause", ["²", "٤", "４"])
def test_visitor_posting_a_non_ascii_digit_as_pause_gets_no_500(contact, newsletter, pause):
    subscribe(actor=None, contact=contact, topic=newsletter)
    sent = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="News", text="Hello")
    send_due_messages()
    client, url = preferences_client(sent)
    response = post(client, url, choice=[f"{newsletter.pk}:email"], pause=pause, action="save")
    assert response.status_code < 500
    contact.refresh_from_db()
    assert contact.paused_until is None


def test_visitor_posting_a_non_ascii_digit_as_topic_choice_gets_no_500(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    sent = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="News", text="Hello")
    send_due_messages()
    client, url = preferences_client(sent)
    response = post(client, url, choice=["²:email", "99999999999999999999:email"], action="save")
    assert response.status_code < 500


# --- id filters in the API and the console: '²' is a digit to str.isdigit but not to int, and
# a 20-digit id overflows the database integer; both were 500s -----------------------------
ODD_IDS = ["²", "99999999999999999999"]


@pytest.mark.parametrize("value", ODD_IDS)
def test_support_key_filtering_gift_cards_by_an_odd_recipient_id_gets_no_500(value, support):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(support)
    assert client.get("/api/v1/gift-cards/", {"recipient": value}).status_code < 500
    assert client.get("/api/v1/referrals/", {"referrer": value}).status_code < 500


@pytest.mark.parametrize("value", ODD_IDS)
def test_marketer_filtering_automation_runs_or_the_calendar_by_an_odd_id_gets_no_500(value, marketer, client):
    from rest_framework.test import APIClient

    flow = create_automation(actor=marketer, name="Welcome", trigger_type="event", trigger={"event": "signed_up"})
    api = APIClient()
    api.force_authenticate(marketer)
    assert api.get(f"/api/v1/automations/{flow.pk}/executions/", {"contact": value}).status_code < 500
    client.force_login(marketer)
    assert client.get("/admin/marketing/campaign/calendar/", {"topic": value}).status_code < 500
