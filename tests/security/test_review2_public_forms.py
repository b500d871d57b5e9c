"""Issue 16, invariant 6 on the public preference center (review): a forged form value is
ignored or refused, never a 500."""

import pytest

from messaging.consent import subscribe
from messaging.outbox import enqueue_message
from messaging.sending import send_due_messages
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
