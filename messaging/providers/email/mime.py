"""The MIME bytes of an email, written from pre-encoded parts, DKIM-signed when the provider
has a key; and `compose`, the one composition every email provider sends."""

import binascii
import re
import uuid
from dataclasses import dataclass

from messaging.models import OutboxMessage, Provider
from messaging.providers.base import secret
from messaging.providers.email.bodies import final_bodies
from messaging.providers.email.headers import build_headers, encode_header_line, envelope_address


def _qp(text: str) -> bytes:
    return binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8")).replace(b"\n", b"\r\n")


TEXT_PART = b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
HTML_PART = b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'


def build_mime(message: OutboxMessage, headers: dict[str, str] | None = None) -> bytes:
    headers = headers or build_headers(message)
    text, html = final_bodies(message)
    return mime_bytes(headers, text, html)


def mime_bytes(headers: dict[str, str], text: str, html: str) -> bytes:
    lines = [encode_header_line(name, value) for name, value in headers.items()]
    lines.append("MIME-Version: 1.0\r\n")
    head = "\r\n".join(lines).encode("utf-8")
    if text and html:
        boundary = f"=_mailroom_{uuid.uuid4().hex}".encode()
        return b"".join(
            [
                head,
                b'Content-Type: multipart/alternative; boundary="',
                boundary,
                b'"\r\n\r\n--',
                boundary,
                b"\r\n",
                TEXT_PART,
                _qp(text),
                b"\r\n--",
                boundary,
                b"\r\n",
                HTML_PART,
                _qp(html),
                b"\r\n--",
                boundary,
                b"--\r\n",
            ]
        )
    return head + (HTML_PART if html else TEXT_PART) + _qp(html or text) + b"\r\n"


# What a DKIM signature covers: the identity headers, the MIME structure, and the one-click
# unsubscribe pair (RFC 8058 section 4: a receiver ignores an unsigned List-Unsubscribe-Post).
DKIM_ALWAYS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type")
DKIM_WHEN_PRESENT = ("Reply-To", "List-Unsubscribe", "List-Unsubscribe-Post", "In-Reply-To", "References")


def dkim_headers(headers: dict[str, str]) -> list[bytes]:
    present = {name.lower() for name in headers}
    return [name.encode() for name in DKIM_ALWAYS] + [name.encode() for name in DKIM_WHEN_PRESENT if name.lower() in present]


def dkim_sign(raw: bytes, provider: Provider, headers: dict[str, str] | None = None) -> bytes:
    dkim_config = provider.config.get("dkim")
    if not dkim_config:
        return raw
    import dkim

    key = secret(provider, "dkim_key_secret") if "dkim_key_secret" in provider.config else dkim_config.get("private_key", "")
    if headers is None:  # the headers of the raw message itself
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
        headers = dict.fromkeys(re.findall(r"^([A-Za-z0-9-]+):", head, re.MULTILINE), "")
    signature = dkim.sign(
        raw, dkim_config["selector"].encode(), dkim_config["domain"].encode(), key.encode(), include_headers=dkim_headers(headers)
    )
    return signature + raw


@dataclass(slots=True)
class Wire:
    """An email exactly as it goes out: the one composition every provider sends."""

    headers: dict[str, str]  # From, To, Subject, Date, Message-ID, List-Unsubscribe(-Post), the message's own
    text: str  # per-message links and pixel filled, secrets filled (or redacted), marketing footer added
    html: str
    raw: bytes  # the MIME bytes, DKIM-signed when the provider has a key ("" when not asked for)

    @property
    def envelope_from(self) -> str:
        return envelope_address(self.headers["From"])


def compose(message: OutboxMessage, provider: Provider | None = None, *, with_secrets: bool = True, raw: bool = True) -> Wire:
    """The one function that turns an outbox message into what goes on the wire. SMTP,
    the Django-backend (anymail) provider and the sandbox all send its result; a new
    email provider must too. `with_secrets=False` redacts the secrets (what is stored)."""
    headers = build_headers(message)
    text, html = final_bodies(message, with_secrets=with_secrets)
    data = mime_bytes(headers, text, html) if raw else b""
    if raw and provider is not None:
        data = dkim_sign(data, provider, headers)
    return Wire(headers, text, html, data)
