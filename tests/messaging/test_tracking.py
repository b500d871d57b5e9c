"""Open pixel and tracked clicks: one insert, automated hits flagged, no open redirect."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.utils import timezone

from messaging.consent import subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import GIF
from messaging.models import DeliveryEvent, SandboxMessage, TrackedLink
from messaging.webhooks.emit import subscribed_types

pytestmark = pytest.mark.django_db


def hits():
    """Opens and clicks: the sandbox records its delivery of each message as well."""
    return DeliveryEvent.objects.exclude(kind=DeliveryEvent.Kind.DELIVERED)


BASE = "http://127.0.0.1:8000"
PERSON = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
HTML = '<html><body><p><a href="https://shop.example.com/spring">Spring</a> <a href="https://shop.example.com/account">Account</a></p></body></html>'


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    settings.MAILROOM_BASE_URL = BASE


@pytest.fixture
def sent_email(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="Spring", html=HTML)
    send_due_messages()
    return message, SandboxMessage.objects.get(message=message).body_html


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


def open_url(html: str) -> str:
    return path_of(re.search(r'<img src="([^"]+/o/[^"]+\.gif)"', html).group(1))


def click_urls(html: str) -> list[str]:
    return [path_of(url) for url in re.findall(r'href="(' + re.escape(BASE) + r'/t/[^"]+)"', html)]


def later(seconds: float = 60):
    """Past the prefetch window, as a person opening the email a minute later."""
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=False)


# --- open pixel ------------------------------------------------------------------------------
def test_the_open_pixel_is_a_43_byte_gif_nobody_caches_and_costs_one_insert(client, sent_email, django_assert_num_queries):
    message, html = sent_email
    url = open_url(html)
    # when a person's mail client loads the image a minute after sending
    with later():
        subscribed_types()  # whether any webhook endpoint listens: known per process, read once
        with django_assert_num_queries(1):
            response = client.get(url, HTTP_USER_AGENT=PERSON)
    # then a GIF comes back that no cache keeps, and one open is recorded as a person's
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response.content == GIF and len(GIF) == 43 and GIF.startswith(b"GIF89a")
    assert "no-store" in response["Cache-Control"] and response["Pragma"] == "no-cache"
    event = hits().get(message=message)
    assert (event.kind, event.is_automated, event.payload) == ("opened", False, {})


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("Mozilla/5.0", "apple-mpp"),
        ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "image-proxy"),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "image-proxy"),
        ("Barracuda Sentinel (EE)", "scanner"),
        ("python-requests/2.32", "scanner"),
        ("", "scanner"),
    ],
)
def test_opens_by_proxies_and_scanners_are_flagged(client, sent_email, agent, reason):
    message, html = sent_email
    with later():
        client.get(open_url(html), HTTP_USER_AGENT=agent)
    event = hits().get(message=message)
    assert event.is_automated and event.payload["automated"] == reason


def test_an_open_within_two_seconds_of_sending_is_a_prefetch(client, sent_email):
    message, html = sent_email
    client.get(open_url(html), HTTP_USER_AGENT=PERSON)  # right away: faster than any person
    event = hits().get(message=message)
    assert event.is_automated and event.payload["automated"] == "prefetch"


def test_a_tampered_or_expired_open_records_nothing(client, sent_email, settings):
    _message, html = sent_email
    url = open_url(html)
    tampered = client.get(url.replace(".gif", "x.gif"))
    with time_machine.travel(timezone.now() + timedelta(days=settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS + 1)):
        expired = client.get(url)
    assert (tampered.status_code, expired.status_code) == (400, 410)
    assert tampered.content == GIF  # still an invisible image in the email client
    assert not hits().exists()


# --- clicks ----------------------------------------------------------------------------------
def test_a_click_redirects_to_the_stored_link_and_records_one_event(client, sent_email):
    message, html = sent_email
    spring = next(url for url in click_urls(html) if f"/t/{TrackedLink.objects.get(url__endswith='/spring').pk}/" in url)
    with later():
        response = client.get(spring, HTTP_USER_AGENT=PERSON)
    assert response.status_code == 302 and response["Location"] == "https://shop.example.com/spring"
    assert response["Cache-Control"] == "no-store"
    event = hits().get(message=message)
    assert (event.kind, event.is_automated, event.payload["link"]) == (
        "clicked",
        False,
        TrackedLink.objects.get(url__endswith="/spring").pk,
    )


def test_a_click_by_a_link_scanner_is_flagged(client, sent_email):
    message, html = sent_email
    with later():
        client.get(click_urls(html)[0], HTTP_USER_AGENT="Mozilla/5.0 (compatible; Proofpoint URL Defense)")
    assert hits().get(message=message).payload["automated"] == "scanner"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.net/",
        "//evil.example.net/",
        "https%3A%2F%2Fevil.example.net%2F",
        "%2F%2Fevil.example.net",
        "/\\evil.example.net",
        "javascript:alert(1)",
    ],
)
def test_no_open_redirect_whatever_url_is_slipped_in(client, sent_email, target):
    _message, html = sent_email
    url = click_urls(html)[0]
    link_id, token = re.match(r"/t/(\d+)/([^/]+)/", url).groups()
    attempts = [
        f"/t/{link_id}/{token}/?url={quote(target, safe='')}&next={target}",  # a query is never read
        f"/t/{target}/{token}/",  # the link id is an integer route: anything else is no route
        f"/t/{link_id}/{target}/",  # in place of the token
        f"/t/{quote(target, safe='')}/{token}/",
    ]
    for attempt in attempts:
        response = client.get(attempt, HTTP_USER_AGENT=PERSON)
        location = response.get("Location", "")
        assert "evil" not in location and "javascript" not in location, attempt
        assert response.status_code in (302, 400, 404), attempt
        if response.status_code == 302:
            assert location in {"https://shop.example.com/spring", "https://shop.example.com/account"}


def test_a_click_only_reaches_links_of_its_own_message(client, sent_email, contact, newsletter):
    _message, html = sent_email
    # another message links somewhere else: its link is stored, but is not this message's
    other = enqueue_message(
        channel="email", contact=contact, topic=newsletter, subject="x", html='<a href="https://elsewhere.example.org/">x</a>'
    )
    foreign = TrackedLink.objects.get(url="https://elsewhere.example.org/")
    token = re.match(r"/t/\d+/([^/]+)/", click_urls(html)[0]).group(1)
    response = client.get(f"/t/{foreign.pk}/{token}/")
    assert response.status_code == 404 and "elsewhere" not in response.content.decode()
    assert not hits().exists() and other.pk


def test_unknown_link_ids_are_404_and_bad_tokens_400(client, sent_email):
    _message, html = sent_email
    link_id, token = re.match(r"/t/(\d+)/([^/]+)/", click_urls(html)[0]).groups()
    unknown = client.get(f"/t/{int(link_id) + 1000}/{token}/")
    tampered = client.get(f"/t/{link_id}/{token[:-2]}xy/")
    assert (unknown.status_code, tampered.status_code) == (404, 400)
    for page in (unknown.content.decode(), tampered.content.decode()):  # nothing about anyone or anywhere
        assert "ada@example.com" not in page and "shop.example.com" not in page
    assert not hits().exists()


def test_a_flood_of_hits_from_one_address_is_throttled(client, sent_email, settings):
    settings.MAILROOM_RATE_LIMITS = settings.MAILROOM_RATE_LIMITS | {"tracking": (5, 60)}
    _message, html = sent_email
    statuses = [client.get(click_urls(html)[0]).status_code for _ in range(7)]
    assert statuses == [302] * 5 + [429] * 2
    assert hits().count() == 5
    refused = client.get(click_urls(html)[0])
    assert refused["Retry-After"] == "60" and "Too many requests" in refused.content.decode()
