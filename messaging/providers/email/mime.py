"""The MIME bytes of an email, written from pre-encoded parts, DKIM-signed when the provider
has a key; and `compose`, the one composition every email provider sends."""

import base64
import binascii
import random
import re
from dataclasses import dataclass, field
from email.utils import encode_rfc2231

from messaging.attachments import attachments_of, read_content
from messaging.models import Attachment, OutboxMessage, Provider
from messaging.providers.base import secret
from messaging.providers.email.bodies import final_bodies
from messaging.providers.email.headers import build_headers, encode_header_line, envelope_address


def _text_part(subtype: bytes, text: str, *, eight_bit: bool = False) -> bytes:
    """A text part, its headers and content, in the cheapest transfer encoding the text
    and the transport allow (RFC 2045 2.7, 2.8; RFC 5322 2.1.1: no NUL, no bare CR, no line
    over 998 octets): 7bit when it is US-ASCII, as most templates' HTML is; 8bit UTF-8
    when the SMTP server takes it (8BITMIME, RFC 6152: `eight_bit`); quoted-printable
    otherwise (ESP raw APIs, the sandbox, long lines). The first two go out as written:
    the quoted-printable pass cost about 6 % of the send path's instructions."""
    text = text.replace("\r\n", "\n")
    plain = "\r" not in text and "\0" not in text
    if plain and text.isascii() and _short_lines(text):
        encoding, content = b"7bit", text.encode("ascii")
    elif plain and eight_bit and _short_lines(content := text.encode("utf-8")):
        encoding = b"8bit"
    else:
        # b2a_qp leaves a bare CR as it is, which is no line ending on the wire: encoded.
        data = content if plain and eight_bit else text.encode("utf-8")  # encoded once
        encoding, content = b"quoted-printable", binascii.b2a_qp(data).replace(b"\r", b"=0D")
    return b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: %s\r\n\r\n%s' % (
        subtype,
        encoding,
        content.replace(b"\n", b"\r\n"),
    )


def _short_lines(text: str | bytes) -> bool:
    """No line over MAX_LINE: from each line start, the last newline within MAX_LINE + 1
    characters ends every line before it, so a 4 KB body takes about four `rfind`s
    (1.1 µs) instead of a list of its lines (3.9 µs)."""
    newline = "\n" if isinstance(text, str) else b"\n"
    start, end = 0, len(text)
    while end - start > MAX_LINE:
        found = text.rfind(newline, start, start + MAX_LINE + 1)
        if found < 0:
            return False
        start = found + 1
    return True


MAX_LINE = 998  # octets, without the CRLF


def build_mime(message: OutboxMessage, headers: dict[str, str] | None = None) -> bytes:
    headers = headers or build_headers(message)
    text, html = final_bodies(message)
    return mime_bytes(headers, text, html, files_of(message) if message.has_attachments else None)


def mime_bytes(headers: dict[str, str], text: str, html: str, files: "list[File] | None" = None, *, eight_bit: bool = False) -> bytes:
    lines = [encode_header_line(name, value) for name, value in headers.items()]
    lines.append("MIME-Version: 1.0\r\n")
    head = "\r\n".join(lines).encode("utf-8")
    if files:
        return head + _with_files(_body(text, html, eight_bit), files)
    return head + _body(text, html, eight_bit)


def _boundary() -> bytes:
    """A MIME boundary: "=_" never occurs in quoted-printable or base64 content, and the
    128 random bits, drawn after the content is fixed, cannot be guessed by 7bit content;
    they also keep nested parts apart (no os.urandom system call per message)."""
    return b"=_mailroom_%032x" % random.getrandbits(128)


def _body(text: str, html: str, eight_bit: bool = False) -> bytes:
    """The body part (its Content-Type line, a blank line, its content)."""
    if text and html:
        boundary = _boundary()
        return b"".join(
            [
                b'Content-Type: multipart/alternative; boundary="',
                boundary,
                b'"\r\n\r\n--',
                boundary,
                b"\r\n",
                _text_part(b"plain", text, eight_bit=eight_bit),
                b"\r\n--",
                boundary,
                b"\r\n",
                _text_part(b"html", html, eight_bit=eight_bit),
                b"\r\n--",
                boundary,
                b"--\r\n",
            ]
        )
    return _text_part(b"html" if html else b"plain", html or text, eight_bit=eight_bit) + b"\r\n"


@dataclass(frozen=True, slots=True)
class File:
    """An attachment with its bytes, read once for the wire."""

    filename: str
    content_type: str
    content: bytes
    content_id: str = ""  # inline: the HTML's cid: reference


def files_of(message: OutboxMessage) -> list[File]:
    return [_file(attachment) for attachment in attachments_of(message)]


def _file(attachment: Attachment) -> File:
    return File(attachment.filename, attachment.content_type, read_content(attachment), attachment.content_id)


def _multipart(subtype: bytes, parts: list[bytes]) -> bytes:
    boundary = _boundary()
    chunks = [b"Content-Type: multipart/", subtype, b'; boundary="', boundary, b'"\r\n\r\n']
    for part in parts:
        chunks += [b"--", boundary, b"\r\n", part, b"" if part.endswith(b"\r\n") else b"\r\n"]
    chunks += [b"--", boundary, b"--\r\n"]
    return b"".join(chunks)


def _file_part(file: File) -> bytes:
    name = file.filename
    quoted = f'filename="{name}"' if name.isascii() else f"filename*={encode_rfc2231(name, 'utf-8')}"
    lines = [
        f"Content-Type: {file.content_type}",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: {'inline' if file.content_id else 'attachment'}; {quoted}",
    ]
    if file.content_id:
        lines.append(f"Content-ID: <{file.content_id}>")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head + base64.encodebytes(file.content).replace(b"\n", b"\r\n")


def _with_files(body: bytes, files: list[File]) -> bytes:
    """multipart/mixed around the body (multipart/related around it and its inline images)
    and the attached files."""
    inline = [file for file in files if file.content_id]
    attached = [file for file in files if not file.content_id]
    if inline:
        body = _multipart(b"related", [body] + [_file_part(file) for file in inline])
    if not attached:
        return body
    return _multipart(b"mixed", [body] + [_file_part(file) for file in attached])


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
    files: list[File] = field(default_factory=list)  # attachments and inline images

    @property
    def envelope_from(self) -> str:
        return envelope_address(self.headers["From"])


def compose(
    message: OutboxMessage, provider: Provider | None = None, *, with_secrets: bool = True, raw: bool = True, eight_bit: bool = False
) -> Wire:
    """The one function that turns an outbox message into what goes on the wire. SMTP,
    the Django-backend (anymail) provider and the sandbox all send its result; a new
    email provider must too. `with_secrets=False` redacts the secrets (what is stored);
    `eight_bit`: the transport takes 8bit content (an SMTP server announcing 8BITMIME)."""
    headers = build_headers(message)
    text, html = final_bodies(message, with_secrets=with_secrets)
    files = files_of(message) if message.has_attachments else []
    data = mime_bytes(headers, text, html, files, eight_bit=eight_bit) if raw else b""
    if raw and provider is not None:
        data = dkim_sign(data, provider, headers)
    return Wire(headers, text, html, data, files)
