"""One composition for every provider: a marketing email as SMTP, the Django-backend
(anymail) provider and the sandbox put it on the wire, parsed back with the email package."""

import base64
import email
import email.policy
import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from messaging.consent import subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage, Provider, SandboxMessage
from tests.support.smtp_sink import SMTPSink

pytestmark = pytest.mark.django_db

POSTAL = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
HTML = '<html><body><p>Hello {{ contact.first_name }}</p><p><a href="https://shop.example.com/sale">Sale</a></p></body></html>'
TEXT = "Hello {{ contact.first_name }}, the sale: https://shop.example.com/sale"


@pytest.fixture
def dkim_key(settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    settings.MAILROOM_SECRETS = {"DKIM": pem.decode()}
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


DKIM_CONFIG = {"dkim": {"selector": "mr", "domain": "news.example.org"}, "dkim_key_secret": "DKIM"}


@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


def send_marketing_email(settings, contact, newsletter) -> OutboxMessage:
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = POSTAL
    settings.MAILROOM_BASE_URL = "https://mail.example.org"
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = enqueue_message(
        channel="email",
        contact=contact,
        topic=newsletter,
        subject="Sale for {{ contact.first_name }}",
        text=TEXT,
        html=HTML,
        from_address="Shop News <news@news.example.org>",
        context={},
    )
    assert send_due_messages() == 1
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT, message.error
    return message


def received_through(kind: str, settings, contact, newsletter, smtp_sink) -> tuple[bytes, OutboxMessage]:
    if kind == "smtp":
        Provider.objects.create(
            name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": smtp_sink.port} | DKIM_CONFIG
        )
        message = send_marketing_email(settings, contact, newsletter)
        return smtp_sink.messages[0], message
    if kind == "anymail":
        from django.core import mail

        mail.outbox = []
        Provider.objects.create(
            name="ESP", channel="email", kind="anymail", config={"backend": "anymail.backends.test.EmailBackend"} | DKIM_CONFIG
        )
        message = send_marketing_email(settings, contact, newsletter)
        sent = mail.outbox[0]
        # What the ESP's API receives is the same composition as the bytes.
        params = sent.anymail_test_params
        assert params["extra_headers"]["List-Unsubscribe"].startswith("<https://mail.example.org/u/")
        assert "__MAILROOM" not in params["text_body"] and "/o/" in params["html_body"]
        return sent.message().as_bytes(), message
    Provider.objects.create(name="Sandbox", channel="email", kind="sandbox", config=DKIM_CONFIG)
    message = send_marketing_email(settings, contact, newsletter)
    return SandboxMessage.objects.get().source.encode(), message


@pytest.mark.parametrize("kind", ["smtp", "anymail", "sandbox"])
def test_marketing_email_on_the_wire_is_complete_through_every_provider(kind, settings, contact, newsletter, smtp_sink, dkim_key):
    raw, message = received_through(kind, settings, contact, newsletter, smtp_sink)
    assert b"__MAILROOM" not in raw and b"{{" not in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    for body in (html, text):
        assert "__MAILROOM" not in body and "{{" not in body
        assert POSTAL in body  # the footer's postal address
    assert "Hello Ada" in html and "Hello Ada" in text and parsed["Subject"] == "Sale for Ada"
    # Pixel and every link tracked, filled for this message.
    assert re.search(r'<img src="https://mail\.example\.org/o/[^"]+\.gif"', html)
    links = re.findall(r'href="([^"]+)"', html)
    assert links and all(re.match(r"https://mail\.example\.org/(t/\d+/[^/]+|u/[^/]+)/$", link) for link in links), links
    assert any("/u/" in link for link in links)  # the footer's unsubscribe link
    # One-click unsubscribe, as a plain URL (not RFC 2047 encoded words).
    header_lines = raw.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = re.sub(r"\r\n[ \t]+", " ", header_lines).replace("\r\n", "\n")
    list_unsubscribe = re.search(r"^List-Unsubscribe: (.*)$", unfolded, re.MULTILINE | re.IGNORECASE).group(1)
    assert re.fullmatch(r"<https://mail\.example\.org/u/[^>\s]+/>", list_unsubscribe), list_unsubscribe
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Message-ID on the sending domain.
    assert parsed["Message-ID"] == message.message_id
    assert message.message_id.endswith("@news.example.org>")
    # DKIM that verifies and covers the one-click headers.
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: dkim_key)
    signature = re.sub(r"\s+", "", re.search(r"^DKIM-Signature:(.*?)\r\n(?!\s)", header_lines + "\r\n", re.S | re.M).group(1))
    signed = set(re.search(r";h=([^;]+)", signature).group(1).lower().split(":"))
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
    } <= signed


@pytest.mark.parametrize("kind", ["smtp", "anymail"])
def test_a_long_list_unsubscribe_is_folded_at_commas_never_into_encoded_words(kind, settings, contact, newsletter, smtp_sink, dkim_key):
    """Django's own message() folds a long List-Unsubscribe into `=?utf-8?q?=3Chttp…`,
    which no mail client reads as a URL; and a Reply-To is signed with the rest."""
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = POSTAL
    leave = "<mailto:leave@news.example.org?subject=unsubscribe-from-the-weekly-news>"
    page = "<https://mail.example.org/leave/" + "x" * 90 + "/>"
    if kind == "smtp":
        Provider.objects.create(
            name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": smtp_sink.port} | DKIM_CONFIG
        )
    else:
        from django.core import mail

        mail.outbox = []
        Provider.objects.create(
            name="ESP", channel="email", kind="anymail", config={"backend": "anymail.backends.test.EmailBackend"} | DKIM_CONFIG
        )
    subscribe(actor=None, contact=contact, topic=newsletter)
    enqueue_message(
        channel="email",
        contact=contact,
        topic=newsletter,
        subject="News",
        html="<p>Hi</p>",
        from_address="news@news.example.org",
        headers={"List-Unsubscribe": f"{leave}, {page}", "Reply-To": "Help desk <help@news.example.org>"},
    )
    assert send_due_messages() == 1
    if kind == "smtp":
        raw = smtp_sink.messages[0]
    else:
        from django.core import mail

        raw = mail.outbox[0].message().as_bytes()
        assert mail.outbox[0].reply_to == ["Help desk <help@news.example.org>"]
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "=?" not in head
    folded = re.search(r"^List-Unsubscribe: (.*?)\r\n(?![ \t])", head + "\r\n", re.S | re.M).group(1)
    assert folded == f"{leave},\r\n {page}"
    assert all(len(line) <= 998 for line in head.split("\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Reply-To"].addresses[0].addr_spec == "help@news.example.org"
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: dkim_key)
    signature = re.sub(r"\s+", "", re.search(r"^DKIM-Signature:(.*?)\r\n(?![ \t])", head + "\r\n", re.S | re.M).group(1))
    assert "reply-to" in re.search(r";h=([^;]+)", signature).group(1).lower().split(":")
