"""What a text part looks like on the wire: 7bit when the text already is 7bit (ASCII, no
bare CR or NUL, lines of at most 998 octets), quoted-printable otherwise. Sent through a
real SMTP server on loopback and parsed back with the email package."""

import email
import email.policy
import re

import pytest

from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage, Provider
from tests.support.smtp_sink import SMTPSink

pytestmark = pytest.mark.django_db

LONG_LINE = "<p>" + "word " * 300 + "</p>"  # 1,507 characters on one line


@pytest.fixture
def received(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    with SMTPSink() as sink:
        Provider.objects.create(name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": sink.port})

        def send(*, text: str, html: str) -> email.message.EmailMessage:
            message = enqueue_message(channel="email", to="ada@example.com", subject="Hello", text=text, html=html)
            assert send_due_messages() == 1
            message.refresh_from_db()
            assert message.status == OutboxMessage.Status.SENT, message.error
            raw = sink.messages[-1]
            assert all(len(line) <= 998 for line in raw.split(b"\r\n")), "a line longer than SMTP allows"
            stray = [m.start() for m in re.finditer(rb"\r(?!\n)|(?<!\r)\n", raw)]
            assert not stray, [raw[max(0, i - 40) : i + 40] for i in stray]
            return email.message_from_bytes(raw, policy=email.policy.default)

        yield send


def parts(parsed) -> dict[str, tuple[str, str]]:
    """Each text part's transfer encoding and decoded content (line endings as LF)."""
    return {
        kind: (part["Content-Transfer-Encoding"], part.get_content().replace("\r\n", "\n"))
        for kind in ("plain", "html")
        if (part := parsed.get_body((kind,))) is not None
    }


def test_ascii_text_and_html_go_out_as_written(received):
    text = "Hello Ada,\n\n.a line that starts with a dot\nsee https://example.com/?a=1&b=2\n"
    html = '<p style="color:#111">Hello Ada &mdash; 20% off</p>\n<p>.dot</p>'
    got = parts(received(text=text, html=html))
    assert got["plain"] == ("7bit", text)
    assert got["html"][0] == "7bit" and got["html"][1].startswith(html)  # then the open pixel


@pytest.mark.parametrize(
    ("text", "html", "quoted"),
    [
        ("Bonjour Zoë, à bientôt\n", "<p>Bonjour Zoë</p>", {"plain", "html"}),  # not ASCII
        ("short\n", LONG_LINE, {"html"}),  # one line over 998 octets
        ("a bare\rcarriage return\n", "<p>ok</p>", {"plain"}),  # CR alone is not a line ending
    ],
    ids=["non-ascii", "long-line", "bare-cr"],
)
def test_text_that_is_not_7bit_goes_out_quoted_printable_and_reads_back_the_same(received, text, html, quoted):
    got = parts(received(text=text, html=html))
    assert {kind for kind, (encoding, _content) in got.items() if encoding == "quoted-printable"} == quoted
    assert {kind for kind, (encoding, _content) in got.items() if encoding == "7bit"} == {"plain", "html"} - quoted
    assert got["plain"][1] == text.replace("\r\n", "\n")
    assert got["html"][1].startswith(html)
