"""The wire-level journey harness (issue 17, "Proof").

Every origin of a message (campaign, A/B campaign, automation step, API single and bulk
send, console test sends, approval notifications) goes out through a real provider kind,
and the test reads what the far end *received*:

- `sandbox`: the composed source the sandbox stored (SandboxMessage.source);
- `smtp`: the bytes a real aiosmtpd server on loopback accepted (tests/support/smtp_sink.py);
- `anymail`: what django-anymail's test backend kept (its `message()` is the composition);
- `http`: the requests a local http.server received (Twilio-style SMS form, FCM-style push JSON).

`Wire.received()` parses them uniformly (`Received`: an `email.message.EmailMessage` for
email kinds, the form/JSON dict for HTTP). `assert_complete_email` holds the rules every
email must meet on the wire; `follow()` opens, clicks and one-click-unsubscribes from the
received bytes with a browser user agent, after the prefetch window, through the test client.
"""

import base64
import email
import email.policy
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import dkim
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.models import Channel, Provider, SandboxMessage, TrackedLink
from tests.api.conftest import api_key, as_user, key_client  # noqa: F401  (API clients as a user or with a key)
from tests.support.fcm import service_account
from tests.support.smtp_sink import SMTPSink

POSTAL = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
BASE = "http://testserver"
# A person's browser: no scanner word, not Apple's bare "Mozilla/5.0".
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
EMAIL_KINDS = ["sandbox", "smtp", "anymail"]
TEXT_KINDS = ["sandbox", "http"]
DKIM = {"dkim": {"selector": "mr", "domain": "news.example.org"}, "dkim_key_secret": "DKIM"}
FROM = "Shop News <news@news.example.org>"

PIXEL = re.compile(r'<img src="(http://testserver/o/[^"]+\.gif)"')
HREF = re.compile(r'href="([^"]+)"')
URL = re.compile(r"https?://[^\s<>\"')]+")
TRACKED = re.compile(r"http://testserver/t/(\d+)/[^/\s\"]+/")
PUBLIC = re.compile(r"http://testserver/(u|p|v)/[^/\s\"]+/")


# --- settings, keys ----------------------------------------------------------------------------
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # once per session: 2048-bit keys are slow
_PEM = _KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
_DNS = b"v=DKIM1; k=rsa; p=" + base64.b64encode(
    _KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def dkim_dns(name, timeout=5) -> bytes:
    assert name == b"mr._domainkey.news.example.org.", name
    return _DNS


@pytest.fixture(autouse=True)
def _journey_settings(settings, http_sink):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = POSTAL
    settings.MAILROOM_BASE_URL = BASE
    settings.MAILROOM_SECRETS = {"DKIM": _PEM.decode(), "SMS_TOKEN": "sms-token", "FCM": service_account(_KEY, http_sink.url + "/token")}


@pytest.fixture
def on_commit_now(monkeypatch):
    """Tests run in one transaction that never commits; what the product does on commit
    (automation triggers on a tracked event) runs at once instead."""
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


# --- what the far end received --------------------------------------------------------------------
@dataclass
class Received:
    kind: str
    channel: str
    to: str
    raw: bytes  # the email's bytes, or the HTTP request body
    email: EmailMessage | None = None
    data: dict = field(default_factory=dict)  # the HTTP form or JSON
    path: str = ""

    @property
    def subject(self) -> str:
        if self.email is not None:
            return str(self.email["Subject"] or "")
        return self.data.get("notification", {}).get("title", "") if self.channel == Channel.PUSH else ""

    @property
    def text(self) -> str:
        if self.email is not None:
            part = self.email.get_body(("plain",))
            return part.get_content() if part is not None else ""
        if self.channel == Channel.PUSH:
            return self.data["notification"]["body"]
        return self.data["Body"]

    @property
    def html(self) -> str:
        if self.email is None:
            return ""
        part = self.email.get_body(("html",))
        return part.get_content() if part is not None else ""

    def header(self, name: str) -> str | None:
        """A header exactly as on the wire (unfolded), not decoded: List-Unsubscribe must be a plain URL."""
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode()
        unfolded = re.sub(r"\r\n[ \t]+", " ", head).replace("\r\n", "\n")
        found = re.search(rf"^{re.escape(name)}: (.*)$", unfolded, re.MULTILINE | re.IGNORECASE)
        return found.group(1) if found else None


def parse_email(kind: str, raw: bytes) -> Received:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return Received(kind, Channel.EMAIL, parsed["To"].addresses[0].addr_spec, raw, email=parsed)


class HTTPSink:
    """A local HTTP server that answers like Twilio/FCM (201 + an id) and keeps every request."""

    def __init__(self):
        self.requests: list[tuple[str, dict, bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the provider session expects

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/token":  # Google's OAuth2 endpoint: a bearer token for FCM
                    answer, status = json.dumps({"access_token": "ya29.journey", "expires_in": 3600, "token_type": "Bearer"}).encode(), 200
                else:
                    sink.requests.append((self.path, dict(self.headers), body))
                    answer, status = (
                        json.dumps({"sid": f"SM{len(sink.requests)}", "name": f"projects/p/messages/{len(sink.requests)}"}).encode(),
                        201,
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HTTPSink":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class Wire:
    """One provider kind: installs its Provider rows and returns what was received, parsed."""

    def __init__(self, kind: str, *, smtp: SMTPSink | None = None, http: HTTPSink | None = None):
        self.kind, self.smtp, self.http = kind, smtp, http

    def __repr__(self) -> str:
        return f"Wire({self.kind})"

    def install(self, channel: str = Channel.EMAIL) -> Provider:
        name = f"{self.kind} {channel}"
        if self.kind == "sandbox":
            return Provider.objects.create(name=name, channel=channel, kind=Provider.Kind.SANDBOX, config=DKIM)
        if self.kind == "smtp":
            config = {"host": "127.0.0.1", "port": self.smtp.port} | DKIM
            return Provider.objects.create(name=name, channel=channel, kind=Provider.Kind.SMTP, config=config)
        if self.kind == "anymail":
            config = {"backend": "anymail.backends.test.EmailBackend"} | DKIM
            return Provider.objects.create(name=name, channel=channel, kind=Provider.Kind.ANYMAIL, config=config)
        if channel == Channel.PUSH:
            config = {"url": self.http.url + "/fcm", "service_account_secret": "FCM"}
        else:
            config = {"url": self.http.url + "/2010-04-01", "account_sid": "AC123", "from": "+33700000000", "token_secret": "SMS_TOKEN"}
        return Provider.objects.create(name=name, channel=channel, kind=Provider.Kind.HTTP, config=config)

    def received(self) -> list[Received]:
        if self.kind == "smtp":
            return [parse_email("smtp", raw) for raw in self.smtp.messages]
        if self.kind == "anymail":
            from django.core import mail

            return [parse_email("anymail", sent.message().as_bytes()) for sent in mail.outbox]
        if self.kind == "sandbox":
            found = []
            for caught in SandboxMessage.objects.order_by("id"):
                if caught.channel == Channel.EMAIL:
                    found.append(parse_email("sandbox", caught.source.encode()))
                else:
                    data = {"Body": caught.body_text, "notification": {"title": caught.subject, "body": caught.body_text}}
                    found.append(Received("sandbox", caught.channel, caught.to_address, caught.body_text.encode(), data=data))
            return found
        found = []
        for path, _headers, body in self.http.requests:
            if path.startswith("/fcm"):
                data = json.loads(body)["message"]
                found.append(Received("http", Channel.PUSH, data["token"], body, data=data, path=path))
            else:
                data = dict(parse_qsl(body.decode()))
                found.append(Received("http", Channel.SMS, data["To"], body, data=data, path=path))
        return found

    def to(self, address: str) -> Received:
        matching = [r for r in self.received() if r.to == address]
        assert len(matching) == 1, (address, [r.to for r in self.received()])
        return matching[0]


@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def http_sink():
    with HTTPSink() as sink:
        yield sink


@pytest.fixture(params=EMAIL_KINDS)
def email_wire(request, db, smtp_sink, http_sink) -> Wire:
    """Each email provider kind in turn, installed."""
    wire = Wire(request.param, smtp=smtp_sink, http=http_sink)
    wire.install(Channel.EMAIL)
    return wire


@pytest.fixture(params=TEXT_KINDS)
def text_wire(request, db, smtp_sink, http_sink) -> Wire:
    """The SMS and push providers of each kind (HTTP into a local server, or the sandbox), installed."""
    wire = Wire(request.param, smtp=smtp_sink, http=http_sink)
    wire.install(Channel.SMS)
    wire.install(Channel.PUSH)
    return wire


# --- the rules every email meets on the wire -----------------------------------------------------
def signed_headers(received: Received) -> set[str]:
    signature = re.sub(r"\s+", "", received.header("DKIM-Signature") or "")
    return set(re.search(r";h=([^;]+)", signature).group(1).lower().split(":"))


def assert_no_leftovers(*parts: str) -> None:
    for part in parts:
        assert "{{" not in part and "{%" not in part, part
        assert "__MAILROOM" not in part, part


def assert_complete_email(received: Received, *, marketing: bool, merged: tuple[str, ...] = (), words: tuple[str, ...] = ()) -> None:
    """What every email must be on the wire; `merged` are merge values that must be there,
    `words` prove the language. Marketing mail: RFC 8058 headers signed by DKIM, footer
    with unsubscribe link and postal address, the open pixel, every HTML link tracked.
    Other mail (notifications, test sends): no List-Unsubscribe and no footer."""
    assert b"__MAILROOM" not in received.raw and b"{{" not in received.raw
    subject, text, html = received.subject, received.text, received.html
    assert_no_leftovers(subject, text, html)
    everything = "\n".join([subject, text, html])
    for value in merged:
        assert value in everything, (value, everything[:2000])
    for word in words:
        assert word in text + html, (word, text)
    assert dkim.verify(received.raw, dnsfunc=dkim_dns), "the DKIM signature does not verify"
    assert {"from", "to", "subject", "date", "message-id"} <= signed_headers(received)
    if marketing:
        assert re.fullmatch(r"<http://testserver/u/[^>\s]+/>", received.header("List-Unsubscribe") or ""), received.header(
            "List-Unsubscribe"
        )
        assert received.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
        assert {"list-unsubscribe", "list-unsubscribe-post"} <= signed_headers(received)
        for body in filter(None, (text, html)):
            assert POSTAL in body, body
            assert re.search(r"http://testserver/u/[^/\s\"]+/", body), body
        if html:
            assert PIXEL.search(html), html
            links = HREF.findall(html)
            assert links
            for link in links:
                assert TRACKED.fullmatch(link) or PUBLIC.fullmatch(link), f"an untracked link: {link}"
            # The text part is not rewritten (product rule: clicks are tracked in HTML, where
            # nearly every reader clicks): its links are the per-message ones or exactly the
            # targets of the HTML's tracked links, nothing else.
            targets = set(link_targets(received).values())
            for url in URL.findall(text):
                assert PUBLIC.fullmatch(url) or url in targets, f"a text link that is not in the HTML: {url}"
    else:
        assert received.header("List-Unsubscribe") is None and received.header("List-Unsubscribe-Post") is None
        assert "http://testserver/u/" not in text + html and POSTAL not in text + html


def assert_complete_text(received: Received, *, merged: tuple[str, ...] = (), words: tuple[str, ...] = ()) -> None:
    """An SMS or push as the provider's API received it."""
    assert b"__MAILROOM" not in received.raw and b"{{" not in received.raw
    assert_no_leftovers(received.subject, received.text)
    for value in merged + words:
        assert value in received.subject + "\n" + received.text, (value, received.text)


# --- a person reads the mail -------------------------------------------------------------------------
@dataclass
class Followed:
    opens: int = 0
    clicks: dict[str, str] = field(default_factory=dict)  # tracked URL → where it redirected
    unsubscribed: bool = False


def follow(received: Received, client, *, click: int = 1, unsubscribe: bool = True, after: timedelta = timedelta(minutes=10)) -> Followed:
    """A person, in a browser, later than any prefetch: loads the images (the open pixel),
    clicks `click` tracked links, then uses the mail client's one-click unsubscribe (the
    RFC 8058 POST to the List-Unsubscribe URL). Everything comes from the received bytes."""
    assert after.total_seconds() > settings.MAILROOM_PREFETCH_SECONDS
    done = Followed()
    with time_machine.travel(timezone.now() + after, tick=False):
        for pixel in dict.fromkeys(PIXEL.findall(received.html)):
            response = client.get(pixel, HTTP_USER_AGENT=BROWSER)
            assert response.status_code == 200 and response["Content-Type"] == "image/gif", pixel
            done.opens += 1
        for link in list(dict.fromkeys(m.group(0) for m in TRACKED.finditer(received.html)))[:click]:
            response = client.get(link, HTTP_USER_AGENT=BROWSER)
            assert response.status_code == 302, (link, response.status_code)
            done.clicks[link] = response["Location"]
        if unsubscribe:
            url = received.header("List-Unsubscribe").strip("<>")
            response = client.post(
                urlsplit(url).path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded", HTTP_USER_AGENT=BROWSER
            )
            assert response.status_code == 200, response.status_code
            done.unsubscribed = True
    return done


def link_targets(received: Received) -> dict[str, str]:
    """Each tracked link of the HTML and the URL its TrackedLink row holds."""
    ids = {m.group(0): int(m.group(1)) for m in TRACKED.finditer(received.html)}
    stored = dict(TrackedLink.objects.filter(pk__in=ids.values()).values_list("pk", "url"))
    return {url: stored[pk] for url, pk in ids.items()}


# --- content and people ---------------------------------------------------------------------------
SHOP = "https://shop.example.com/sale?c=spring&d=1"  # in HTML as `&amp;`: the click must land on this exact URL
BODY = {
    "en": (
        "<html><body><p>Hello {{ contact.first_name }}, your plan: {{ contact.attributes.plan }}.</p>"
        '<p><a href="https://shop.example.com/sale?c=spring&amp;d=1">Spring sale</a></p>'
        '<p><a href="{{ preferences_url }}">Your preferences</a></p>__LEAVE__</body></html>'
    ),
    "fr": (
        "<html><body><p>Bonjour {{ contact.first_name }}, votre formule : {{ contact.attributes.plan }}.</p>"
        '<p><a href="https://shop.example.com/sale?c=spring&amp;d=1">Soldes de printemps</a></p>'
        '<p><a href="{{ preferences_url }}">Vos préférences</a></p>__LEAVE__</body></html>'
    ),
}
SUBJECT = {"en": "Spring sale for {{ contact.first_name }}", "fr": "Soldes pour {{ contact.first_name }}"}
SMS = {
    "en": "Hi {{ contact.first_name }}, {{ contact.attributes.plan }} sale: https://shop.example.com/s Manage: {{ preferences_url }}",
    "fr": "Salut {{ contact.first_name }}, soldes {{ contact.attributes.plan }} : https://shop.example.com/s Gérer : {{ preferences_url }}",
}
LEAVE = {
    "en": '<p><a href="{{ unsubscribe_url }}">Leave this list</a></p>',
    "fr": '<p><a href="{{ unsubscribe_url }}">Quitter cette liste</a></p>',
}
# Words that only the contact's language has: the body; and the footer's unsubscribe
# label, when the footer adds the link (the template has none of its own).
WORDS = {"en": ("Hello", "Spring sale"), "fr": ("Bonjour", "Soldes de printemps")}
FOOTER_WORDS = {"en": ("Unsubscribe",), "fr": ("Se désabonner",)}
LEAVE_WORDS = {"en": ("Leave this list",), "fr": ("Quitter cette liste",)}
SMS_WORDS = {"en": ("Hi ", "sale:"), "fr": ("Salut ", "soldes")}


def bilingual_template(actor, topic, *, key: str = "journey", channel: str = "email", unsubscribe_link: bool = False):
    """An English template and its French variant (same key), both active; returns the English
    version. With `unsubscribe_link` the body has its own (campaigns require one), else the
    footer adds it."""

    versions = {}
    for locale in ("en", "fr"):
        template = create_template(
            actor=actor, key=key, name=f"Journey {locale}", locale=locale, category="newsletter", channel=channel, topic=topic
        )
        version = save_template_version(
            actor=actor,
            template=template,
            subject=SUBJECT[locale],
            body_format="html",
            body=BODY[locale].replace("__LEAVE__", LEAVE[locale] if unsubscribe_link else ""),
            sms_body=SMS[locale],
        )
        activate_template_version(actor=actor, version=version)
        versions[locale] = version
    return versions["en"]


def people(topic, *, channels=("email",)):
    """Two subscribed contacts: Ada reads English, Julie French; each with a plan and a phone."""

    made = []
    for first, locale, plan, phone in (("Ada", "en", "gold", "+33611111111"), ("Julie", "fr", "argent", "+33622222222")):
        contact = create_contact(
            actor=None, email=f"{first.lower()}@example.com", phone=phone, first_name=first, locale=locale, attributes={"plan": plan}
        )
        contact.push_tokens = [f"push-token-{first.lower()}"]
        contact.save(update_fields=["push_tokens"])
        for channel in channels:
            subscribe(actor=None, contact=contact, topic=topic, channel=channel)
        made.append(contact)
    return made


def merged(contact) -> tuple[str, ...]:
    return (contact.first_name, contact.attributes["plan"])


# --- what the reports say, after the rollup ----------------------------------------------------------
FIGURES = ("sent", "delivered", "opened_unique", "opened_total", "clicked_unique", "clicked_total", "unsubscribed")


def analytics_row(user, *, by: str, pk: int) -> dict[str, int]:
    """The analytics API's row for one campaign or automation (as `user`)."""
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(user)
    response = api.get(f"/api/v1/analytics/{by}s/")
    assert response.status_code == 200, response.content[:300]
    rows = {row[f"{by}_id"]: row for row in response.json()}
    assert str(pk) in rows, rows
    return {name: int(rows[str(pk)][name]) for name in FIGURES}


def analytics_page(client, user, *, by: str, pk: int) -> str:
    client.force_login(user)
    response = client.get(f"/admin/analytics/{by}s/{pk}/")
    assert response.status_code == 200
    return response.content.decode()


def report_cards(client, user, campaign) -> dict[str, int]:
    """The campaign report page's figure cards, as the page shows them."""
    client.force_login(user)
    response = client.get(f"/admin/marketing/campaign/{campaign.pk}/report/")
    assert response.status_code == 200
    page = response.content.decode()
    cards = re.findall(r'data-testid="report-card"><dt[^>]*>([^<]+)</dt><dd[^>]*>([^<]+)</dd>', page)
    return {label.strip(): value.strip() for label, value in cards}


def expected_figures(*, sent: int, delivered: int, opens: int, clicks: int, unsubscribes: int) -> dict[str, int]:
    return {
        "sent": sent,
        "delivered": delivered,
        "opened_unique": opens,
        "opened_total": opens,
        "clicked_unique": clicks,
        "clicked_total": clicks,
        "unsubscribed": unsubscribes,
    }


def assert_analytics_show(client, user, *, by: str, pk: int, **figures: int) -> None:
    """The rollup's figures for a campaign/automation, in the API and on the console page,
    are exactly the events the journey caused."""
    expected = expected_figures(**figures)
    assert analytics_row(user, by=by, pk=pk) == expected
    page = analytics_page(client, user, by=by, pk=pk)
    assert f'data-testid="kpi-sent">{expected["sent"]}<' in page
    assert f"{expected['delivered']} delivered" in page
    assert f"{expected['unsubscribed']} unsubscribed" in page


def delivered_by(wire: Wire, n: int) -> int:
    """Delivered events: the sandbox is the recipient's server and records them; SMTP and the
    ESP need a webhook, which these journeys do not send."""
    return n if wire.kind == "sandbox" else 0


@pytest.fixture
def daytime():
    """A Tuesday, 10:00 UTC (11:00 in Paris): outside any quiet hours; the clock stands still."""
    from datetime import UTC, datetime

    with time_machine.travel(datetime(2026, 3, 3, 10, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller
