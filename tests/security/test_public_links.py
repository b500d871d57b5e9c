"""Hostile input on the public links: tampered, expired, cross-purpose tokens; nothing in
clear in a URL; RFC 8058 one-click unsubscribe; floods."""

import base64
import json
import re
import zlib
from datetime import timedelta
from email.utils import parseaddr

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from messaging.consent import subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import ConsentRecord, DeliveryEvent, OutboxMessage, SandboxMessage, Subscription

pytestmark = pytest.mark.django_db
BASE = "https://mail.example.com"
HTML = (
    '<html><body><p><a href="https://shop.example.com/spring">Spring</a></p>'
    '<p><a href="__MAILROOM_PREFERENCES__">Preferences</a> <a href="__MAILROOM_VIEW__">View online</a></p></body></html>'
)
ROUTES = {"u": "/u/{}/", "p": "/p/{}/", "v": "/v/{}/", "o": "/o/{}.gif"}


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    settings.MAILROOM_BASE_URL = BASE


@pytest.fixture
def caught(contact, newsletter):
    """A marketing email as it went out: its headers and bodies, and its message."""
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="Spring", text="Hello", html=HTML)
    queued = enqueue_message(
        channel="email", contact=contact, topic=newsletter, subject="Later", text="x", scheduled_at=timezone.now() + timedelta(hours=1)
    )
    send_due_messages()
    return SandboxMessage.objects.get(message=message), message, queued


def urls_in(sandbox: SandboxMessage) -> list[str]:
    found = re.findall(re.escape(BASE) + r"[^\s\"'<>]+", sandbox.body_html + sandbox.body_text + str(sandbox.headers))
    return sorted(set(found))


def tokens_of(sandbox: SandboxMessage) -> dict[str, str]:
    """route letter -> token, for each kind of public link in the email."""
    tokens = {}
    for url in urls_in(sandbox):
        if match := re.match(re.escape(BASE) + r"/([upvo])/([^/]+?)(?:\.gif|/)$", url):
            tokens[match.group(1)] = match.group(2)
        elif match := re.match(re.escape(BASE) + r"/t/(\d+)/([^/]+)/$", url):
            tokens["t"] = match.group(2)
            tokens["link"] = match.group(1)
    return tokens


def readable_payload(token: str):
    """What a curious person reads out of a token without the key: its JSON payload."""
    payload = token.rsplit(":", 2)[0]
    data = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    return json.loads(zlib.decompress(data) if payload.startswith(".") else data)


def test_no_address_and_no_id_appears_in_clear_in_any_link(caught, contact):
    sandbox, message, _queued = caught
    tokens = tokens_of(sandbox)
    assert set(tokens) == {"u", "p", "v", "o", "t", "link"}  # unsubscribe, preferences, view, open, click
    assert contact.email not in " ".join(urls_in(sandbox))
    for kind, token in tokens.items():
        if kind == "link":
            continue  # the TrackedLink id is public by design: it only names a stored URL
        payload = readable_payload(token)
        values = list(payload.values()) if isinstance(payload, dict) else [payload]
        assert all(isinstance(value, str) for value in values), (kind, payload)  # no bare numbers
        assert str(message.pk) not in values and str(message.contact_id) not in values, (kind, payload)
        assert all(len(value) >= 6 for value in values), (kind, payload)  # concealed, not a short id


@pytest.mark.parametrize("route", ["u", "p", "v", "o", "t"])
@pytest.mark.parametrize("where", ["payload", "timestamp", "signature", "truncated", "padded"])
def test_a_tampered_token_gets_a_plain_400_and_changes_nothing(client, caught, contact, route, where):
    sandbox, _message, queued = caught
    tokens = tokens_of(sandbox)
    payload, stamp, signature = tokens[route].rsplit(":", 2)
    flip = lambda text: text[:-1] + ("A" if text[-1] != "A" else "B")  # noqa: E731
    bad = {
        "payload": f"{flip(payload)}:{stamp}:{signature}",
        "timestamp": f"{payload}:{flip(stamp)}:{signature}",
        "signature": f"{payload}:{stamp}:{flip(signature)}",
        "truncated": tokens[route][:-5],
        "padded": tokens[route] + "A",
    }[where]
    url = f"/t/{tokens['link']}/{bad}/" if route == "t" else ROUTES[route].format(bad)
    response = client.post(url, {"List-Unsubscribe": "One-Click"}) if route == "u" else client.get(url)
    assert response.status_code == 400
    body = response.content.decode("latin-1")
    assert contact.email not in body and "Spring" not in body and "Newsletter" not in body
    assert Subscription.objects.get(contact=contact).status == "subscribed"
    assert not DeliveryEvent.objects.exclude(kind=DeliveryEvent.Kind.DELIVERED).exists()  # the sandbox delivered it, nothing else
    queued.refresh_from_db()
    assert queued.status == "queued"


@pytest.mark.parametrize("route", ["u", "p", "v", "o"])
def test_a_token_only_opens_the_page_it_was_made_for(client, caught, route):
    tokens = tokens_of(caught[0])
    for other in ["u", "p", "v", "o"]:
        if other != route:
            assert client.get(ROUTES[other].format(tokens[route])).status_code == 400, (route, other)
    assert client.get(f"/t/{tokens['link']}/{tokens[route]}/").status_code == 400


def test_every_link_but_unsubscribe_expires_with_a_410(client, caught, settings):
    tokens = tokens_of(caught[0])
    with time_machine.travel(timezone.now() + timedelta(days=settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS, minutes=1)):
        statuses = {route: client.get(ROUTES[route].format(tokens[route])).status_code for route in ROUTES}
        statuses["t"] = client.get(f"/t/{tokens['link']}/{tokens['t']}/").status_code
    # an unsubscribe link keeps working for good (a person must always be able to leave)
    assert statuses == {"u": 200, "p": 410, "v": 410, "o": 410, "t": 410}
    assert not DeliveryEvent.objects.exclude(kind=DeliveryEvent.Kind.DELIVERED).exists()  # the sandbox delivered it, nothing else


# --- RFC 8058 --------------------------------------------------------------------------------
def test_rfc8058_headers_name_one_https_uri_and_the_one_click_post(caught):
    sandbox, *_ = caught
    headers = sandbox.headers
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    uris = re.findall(r"<([^>]+)>", headers["List-Unsubscribe"])
    assert len(uris) == 1 and uris[0].startswith("https://mail.example.com/u/")
    assert uris[0] in sandbox.body_html and uris[0] in sandbox.body_text  # the visible link is the same
    assert parseaddr(headers["To"])[1] == "ada@example.com"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_the_one_click_post_unsubscribes_at_once_with_no_redirect_cookie_or_csrf(caught, contact, newsletter, encoding):
    sandbox, _message, queued = caught
    url = re.search(r"<([^>]+)>", sandbox.headers["List-Unsubscribe"]).group(1).removeprefix(BASE)
    client = Client(enforce_csrf_checks=True)  # a mailbox provider's server: no cookie, no CSRF token
    if encoding == "urlencoded":
        response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    else:
        response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "Location" not in response
    assert Subscription.objects.get(contact=contact, topic=newsletter).status == "unsubscribed"
    queued.refresh_from_db()
    assert queued.status == "cancelled"  # already queued for that topic: never goes
    assert ConsentRecord.objects.get(action="withdrawn").wording_version == "rfc8058-one-click"
    # a retry by the provider changes nothing more
    assert client.post(url, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert ConsentRecord.objects.filter(action="withdrawn").count() == 1


def test_a_link_scanner_following_the_unsubscribe_link_unsubscribes_nobody(caught, contact):
    sandbox, *_ = caught
    url = re.search(r"<([^>]+)>", sandbox.headers["List-Unsubscribe"]).group(1).removeprefix(BASE)
    client = Client()
    assert client.get(url).status_code == 200 and client.head(url).status_code == 200
    assert Subscription.objects.get(contact=contact).status == "subscribed"


def test_a_message_sent_after_one_click_unsubscribe_is_suppressed(caught, contact, newsletter):
    sandbox, *_ = caught
    url = re.search(r"<([^>]+)>", sandbox.headers["List-Unsubscribe"]).group(1).removeprefix(BASE)
    Client().post(url, {"List-Unsubscribe": "One-Click"})
    later = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="Again", text="x")
    send_due_messages()
    later.refresh_from_db()
    assert later.status == OutboxMessage.Status.SUPPRESSED


# --- floods ----------------------------------------------------------------------------------
def test_a_flood_on_the_public_pages_is_throttled_with_a_friendly_429(caught, settings):
    settings.MAILROOM_RATE_LIMITS = settings.MAILROOM_RATE_LIMITS | {"pages": (3, 60)}
    tokens = tokens_of(caught[0])
    client = Client()
    statuses = [client.get(f"/p/{tokens['p']}/").status_code for _ in range(3)]
    statuses += [client.get("/p/forged/").status_code, client.get("/u/forged/").status_code]
    assert statuses == [200, 200, 200, 429, 429]  # forged tokens are counted too
    # a valid unsubscribe link is never refused for rate (mailbox providers post from few addresses)
    assert client.get(f"/u/{tokens['u']}/").status_code == 200
    refused = client.get(f"/p/{tokens['p']}/")
    assert refused["Retry-After"] == "60" and "Too many requests" in refused.content.decode()
    other_ip = client.get(f"/p/{tokens['p']}/", REMOTE_ADDR="198.51.100.7")
    assert other_ip.status_code == 200
