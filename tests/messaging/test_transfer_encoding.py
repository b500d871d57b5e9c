"""What a text part looks like on the wire: 7bit when the text already is 7bit (ASCII, no
bare CR or NUL, lines of at most 998 octets); 8bit UTF-8 when it is not ASCII but the SMTP
server announces 8BITMIME (the envelope then says BODY=8BITMIME); quoted-printable
otherwise. Sent through a real SMTP server on loopback, with and without 8BITMIME, and
parsed back with the email package."""

import email
import email.policy
import re

import pytest

from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage, Provider
from messaging.providers.email.mime import _short_lines
from messaging.providers.email.smtp import SMTPSession
from tests.support.smtp_sink import SMTPSink

pytestmark = pytest.mark.django_db

LONG_LINE = "<p>" + "word " * 300 + "</p>"  # 1,507 characters on one line


@pytest.fixture(params=[True, False], ids=["8bitmime", "no-8bitmime"])
def eight_bit(request) -> bool:
    return request.param


@pytest.fixture
def received(settings, eight_bit):
    settings.MAILROOM_KICK_CLUSTER = False
    with SMTPSink(eight_bit=eight_bit) as sink:
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
            body = [option for option in sink.handler.mail_options[-1] if option.startswith("BODY=")]
            assert body == (["BODY=8BITMIME"] if eight_bit else [])
            assert eight_bit or raw.isascii(), "8bit content to a server that did not say 8BITMIME"
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
    ("text", "html", "not_7bit"),
    [
        ("Bonjour Zoë, à bientôt\n", "<p>Bonjour Zoë</p>", {"plain", "html"}),  # not ASCII
        ("short\n", LONG_LINE, {"html"}),  # one line over 998 octets
        ("a bare\rcarriage return\n", "<p>ok</p>", {"plain"}),  # CR alone is not a line ending
    ],
    ids=["non-ascii", "long-line", "bare-cr"],
)
def test_text_that_is_not_7bit_goes_out_8bit_or_quoted_printable_and_reads_back_the_same(received, eight_bit, text, html, not_7bit):
    got = parts(received(text=text, html=html))
    encodings = {kind: encoding for kind, (encoding, _content) in got.items()}
    # 8bit only for UTF-8 text in short lines, to a server that takes it; quoted-printable else
    as_8bit = {
        kind
        for kind in not_7bit
        if eight_bit and (text if kind == "plain" else html) != LONG_LINE and "\r" not in (text if kind == "plain" else html)
    }
    assert encodings == {
        kind: "8bit" if kind in as_8bit else "quoted-printable" if kind in not_7bit else "7bit" for kind in ("plain", "html")
    }
    assert got["plain"][1] == text.replace("\r\n", "\n")
    assert got["html"][1].startswith(html)


def test_a_composition_made_for_an_8bitmime_server_is_made_again_after_reconnecting_to_one_without(settings):
    """Messages composed ahead for a server that took 8bit are composed again, quoted-printable,
    when the session reconnects to one that does not (a failover address, an upgraded MTA)."""
    settings.MAILROOM_KICK_CLUSTER = False
    with SMTPSink(eight_bit=True) as first:
        provider = Provider.objects.create(name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": first.port})
        message = enqueue_message(channel="email", to="zoe@example.com", subject="Salut", text="Bonjour Zoë\n")
        session = SMTPSession(provider)
        with session:
            session.begin([message])
            session.prepare(message)  # composed 8bit while connected to the first server
            session.composed[id(message)] = (message, session._compose(message))
            with SMTPSink(eight_bit=False) as second:
                session._drop()
                provider.config["port"] = second.port
                result = session.send(message)
    assert result.sent, result.response
    parsed = email.message_from_bytes(second.messages[0], policy=email.policy.default)
    assert parsed.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"
    assert not [option for option in second.handler.mail_options[0] if option.startswith("BODY=")]


@pytest.mark.parametrize("kind", [str, bytes])
@pytest.mark.parametrize(
    ("lines", "short"),
    [
        ([998], True),
        ([999], False),
        ([10, 998, 998, 3], True),
        ([998, 999], False),
        ([999, 5], False),
        ([500] * 40 + [998], True),
        ([500] * 40 + [999], False),
        ([0, 0, 2000, 0], False),
    ],
)
def test_the_line_length_check_finds_a_line_over_998_octets_wherever_it_is(kind, lines, short):
    text = "\n".join("x" * length for length in lines)
    assert _short_lines(text if kind is str else text.encode()) is short
