"""Limits on the recipients' public links (issue 16): an unsubscribe link keeps working
forever, a mailbox provider's one-click POSTs are never refused for rate, and the
view-in-browser page cannot post a form or rebase its links."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.models import ConsentRecord, Subscription

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"
UNSUBSCRIBE = "__MAILROOM_UNSUBSCRIBE__"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    settings.MAILROOM_BASE_URL = BASE


def link(message, marker: str = UNSUBSCRIBE) -> str:
    return public_link(message.pk, marker).removeprefix(BASE)


def test_an_unsubscribe_link_made_400_days_ago_still_unsubscribes(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="Old news", text="x")
    url = link(message)
    with time_machine.travel(timezone.now() + timedelta(days=400)):
        page = Client().get(url)
        response = Client().post(url, {"List-Unsubscribe": "One-Click"})
    assert page.status_code == 200
    assert response.status_code == 200
    assert Subscription.objects.get(contact=contact, topic=newsletter).status == Subscription.Status.UNSUBSCRIBED
    # still signed and purpose-salted: the old token opens nothing else, a tampered one nothing at all
    token = url.split("/")[2]
    assert Client().get(f"/p/{token}/").status_code == 400
    assert Client().post(f"/u/{token[:-2]}xx/", {"List-Unsubscribe": "One-Click"}).status_code == 400


def test_the_preference_and_view_links_still_expire(contact, newsletter, settings):
    message = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="Old news", text="x")
    preferences, view = link(message, "__MAILROOM_PREFERENCES__"), link(message, "__MAILROOM_VIEW__")
    with time_machine.travel(timezone.now() + timedelta(days=settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS + 1)):
        assert Client().get(preferences).status_code == 410
        assert Client().get(view).status_code == 410


def test_a_mailbox_provider_posting_150_one_click_unsubscribes_from_one_ip_is_never_refused(newsletter):
    # given 150 subscribers who each got a newsletter (more than the 60/min page limit)
    messages = []
    for n in range(150):
        person = create_contact(actor=None, email=f"reader{n}@example.com")
        subscribe(actor=None, contact=person, topic=newsletter)
        messages.append(enqueue_message(channel="email", contact=person, topic=newsletter, subject="News", text="x"))
    # when the provider posts every RFC 8058 one-click from one address within a minute
    provider = Client(REMOTE_ADDR="209.85.220.41")
    statuses = [provider.post(link(message), {"List-Unsubscribe": "One-Click"}).status_code for message in messages]
    # then every one is honoured
    assert statuses == [200] * 150
    assert not Subscription.objects.filter(topic=newsletter, status=Subscription.Status.SUBSCRIBED).exists()
    assert ConsentRecord.objects.filter(action="withdrawn", wording_version="rfc8058-one-click").count() == 150


def test_unsubscribe_posts_without_a_valid_token_are_throttled(contact, newsletter, settings):
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="News", text="x")
    limit = settings.MAILROOM_RATE_LIMITS["pages"][0]
    guesser = Client(REMOTE_ADDR="203.0.113.66")
    statuses = [guesser.post(f"/u/forged{n}/", {"List-Unsubscribe": "One-Click"}).status_code for n in range(limit + 5)]
    assert statuses[:limit] == [400] * limit
    assert statuses[limit:] == [429] * 5
    # the guesser's flood does not stop a real one-click from the same address
    assert guesser.post(link(message), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Subscription.objects.get(contact=contact, topic=newsletter).status == Subscription.Status.UNSUBSCRIBED


def test_view_in_browser_csp_forbids_form_posts_and_base_tags(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="News", html="<p>News</p>")
    send_due_messages()
    response = Client().get(link(message, "__MAILROOM_VIEW__"))
    assert response.status_code == 200
    directives = {part.split()[0]: part.split()[1:] for part in response["Content-Security-Policy"].split(";") if part.strip()}
    assert directives["form-action"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["default-src"] == ["'none'"]
