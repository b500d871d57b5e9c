"""The recipient's pages: one-click unsubscribe (RFC 8058), preference center, view in browser."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from messaging.consent import subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.models import ConsentRecord, OutboxMessage, SandboxMessage, Subscription, Suppression, Topic
from messaging.views.public import as_web_page

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"


@pytest.fixture
def promotions(db):
    return Topic.objects.create(key="promotions", name="Promotions", kind=Topic.Kind.MARKETING)


def link(message, marker: str) -> str:
    return public_link(message.pk, marker).removeprefix(BASE)


@pytest.fixture
def subscribed(contact, newsletter, promotions):
    subscribe(actor=None, contact=contact, topic=newsletter)
    subscribe(actor=None, contact=contact, topic=promotions)
    sent = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="News", html="<p>News</p>")
    send_due_messages()
    queued_news = enqueue_message(
        channel="email", contact=contact, topic=newsletter, subject="More news", text="x", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    queued_promo = enqueue_message(
        channel="email", contact=contact, topic=promotions, subject="Sale", text="x", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    return sent, queued_news, queued_promo


def test_rfc8058_one_click_post_unsubscribes_at_once_without_csrf(subscribed, contact, newsletter):
    sent, queued_news, queued_promo = subscribed
    client = Client(enforce_csrf_checks=True)
    response = client.post(link(sent, "__MAILROOM_UNSUBSCRIBE__"), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Subscription.objects.get(contact=contact, topic=newsletter).status == "unsubscribed"
    record = ConsentRecord.objects.get(action="withdrawn")
    assert (record.source, record.wording_version) == ("unsubscribe_link", "rfc8058-one-click")
    queued_news.refresh_from_db()
    queued_promo.refresh_from_db()
    assert queued_news.status == "cancelled" and queued_promo.status == "queued"  # only that topic


def test_the_unsubscribe_link_asks_before_acting(client, subscribed, contact):
    sent, *_ = subscribed
    page = client.get(link(sent, "__MAILROOM_UNSUBSCRIBE__"))
    assert page.status_code == 200 and "Newsletter" in page.content.decode()
    assert not ConsentRecord.objects.filter(action="withdrawn").exists()
    assert "script-src 'none'" in page["Content-Security-Policy"]
    done = client.post(link(sent, "__MAILROOM_UNSUBSCRIBE__"), {"scope": "all"})
    assert "Votre désabonnement est confirmé" in done.content.decode()  # the contact reads French
    assert not Subscription.objects.filter(contact=contact, status="subscribed").exists()


def test_the_page_speaks_the_contacts_language(client, subscribed):
    sent, *_ = subscribed  # the contact fixture's locale is fr
    page = client.get(link(sent, "__MAILROOM_UNSUBSCRIBE__")).content.decode()
    assert 'lang="fr"' in page


@pytest.mark.parametrize("mangle", [lambda t: t[:-3] + "abc", lambda t: "x" + t, lambda t: "nothing"])
def test_a_tampered_link_gets_a_plain_error_and_changes_nothing(client, subscribed, contact, mangle):
    sent, *_ = subscribed
    token = link(sent, "__MAILROOM_UNSUBSCRIBE__").split("/")[2]
    response = client.post(f"/u/{mangle(token)}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert contact.email not in response.content.decode()
    assert Subscription.objects.filter(contact=contact, status="subscribed").count() == 2


def test_an_expired_link_no_longer_works(client, subscribed, settings):
    sent, *_ = subscribed
    url = link(sent, "__MAILROOM_PREFERENCES__")  # unsubscribe links never expire
    with time_machine.travel(timezone.now() + timedelta(days=settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS + 1)):
        response = client.get(url)
    assert response.status_code == 410 and "This link has expired" in response.content.decode()


def test_a_token_for_one_purpose_does_not_open_another(client, subscribed):
    sent, *_ = subscribed
    token = link(sent, "__MAILROOM_VIEW__").split("/")[2]
    assert client.post(f"/u/{token}/", {"List-Unsubscribe": "One-Click"}).status_code == 400


def test_unsubscribing_from_a_raw_address_message_suppresses_the_address(client):
    message = enqueue_message(channel="email", to="someone@example.com", text="hi")
    client.post(link(message, "__MAILROOM_UNSUBSCRIBE__"), {"scope": "topic"})
    assert Suppression.objects.filter(address="someone@example.com", reason="unsubscribe").exists()


def test_the_preference_center_changes_topics_and_language_with_a_consent_trail(client, subscribed, contact, newsletter, promotions):
    sent, *_ = subscribed
    url = link(sent, "__MAILROOM_PREFERENCES__")
    page = client.get(url).content.decode()
    assert "Promotions" in page and 'name="choice"' in page and "csrfmiddlewaretoken" in page
    response = client.post(
        url, {"choice": [f"{promotions.pk}:email"], "locale": "en", "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )
    assert "Your preferences are saved." in response.content.decode()
    assert Subscription.objects.get(contact=contact, topic=newsletter).status == "unsubscribed"
    assert Subscription.objects.get(contact=contact, topic=promotions).status == "subscribed"
    contact.refresh_from_db()
    assert contact.locale == "en"
    assert ConsentRecord.objects.filter(source="preference_center", action="withdrawn").count() == 1


def test_the_preference_center_needs_its_csrf_token(subscribed, contact):
    sent, *_ = subscribed
    client = Client(enforce_csrf_checks=True)
    response = client.post(link(sent, "__MAILROOM_PREFERENCES__"), {"everything": "1"})
    assert response.status_code == 403
    assert Subscription.objects.filter(contact=contact, status="subscribed").count() == 2


def test_view_in_browser_shows_the_message_with_no_script_allowed(client, subscribed):
    sent, *_ = subscribed
    response = client.get(link(sent, "__MAILROOM_VIEW__"))
    assert response.status_code == 200 and "<p>News</p>" in response.content.decode()
    assert "default-src 'none'" in response["Content-Security-Policy"]


def test_every_marketing_email_links_to_a_working_unsubscribe_page(client, subscribed):
    caught = SandboxMessage.objects.get()
    url = caught.headers["List-Unsubscribe"].strip("<>").removeprefix(BASE)
    assert client.get(url).status_code == 200
    assert url.removeprefix("/u/").split("/")[0] in caught.body_text or "/u/" in caught.body_text
    assert OutboxMessage.objects.get(pk=subscribed[0].pk).status == "sent"


def test_view_in_browser_gives_the_email_a_language_and_a_title(client, subscribed, contact):
    # given an email body sent as a bare fragment (no <html>, no <title>)
    sent, *_ = subscribed
    page = client.get(link(sent, "__MAILROOM_VIEW__")).content.decode()
    # then the page around it has the contact's language and the subject as its title
    assert page.startswith(f'<!doctype html><html lang="{contact.locale}"><head><meta charset="utf-8"><title>News</title>')
    assert "<p>News</p>" in page


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            '<html lang="und"><head><title></title></head><body>x</body></html>',
            '<html lang="fr"><head><title>A &amp; B</title><title></title>',
        ),
        ('<HTML class="m"><body>x</body></HTML>', '<HTML lang="fr" class="m"><head><title>A &amp; B</title></head><body>'),
        ('<html lang="en"><head><title>Kept</title></head><body>x</body></html>', '<html lang="en"><head><title>Kept</title></head>'),
    ],
)
def test_an_email_document_keeps_its_own_language_and_title_and_gets_what_it_lacks(html, expected):
    page = as_web_page(html, title="A & B", language="fr")
    assert page.startswith(expected), page
    assert "<body>x</body>" in page  # the body itself is untouched
