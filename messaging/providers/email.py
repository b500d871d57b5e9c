"""Building email bytes fast, and the SMTP and Django-backend (anymail) sessions.

The MIME is written directly from pre-encoded parts (quoted-printable through binascii,
headers encoded once) instead of through `email.message`, which is several times slower
per message; the structure is the plain multipart/alternative every client reads.

Per message the send path does as little as it can: the sender's address is parsed and
encoded once per process, a plain recipient address is used as it is, a non-ASCII
subject becomes RFC 2047 encoded words directly, the two signed tokens of an email (the
unsubscribe link and the click marker) are made with an HMAC key derived once, and SMTP
is pipelined (RFC 2920) when the server offers it: one round trip per message instead
of smtplib's four (see SMTPSession).
"""

import base64
import binascii
import contextlib
import email
import email.message
import hashlib
import hmac
import re
import smtplib
import time
import uuid
from dataclasses import dataclass
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from messaging.delivery.tracking import fill_message_marker, public_link
from messaging.models import Contact, OutboxMessage, Provider
from messaging.providers.base import ProviderError, ProviderMisconfigured, Result, Session, permanent, sent, transient
from messaging.secrets import SecretUnavailable, redact, reveal, unseal_credentials
from messaging.site import current as current_site

HARD_BOUNCE_CODES = {550, 551, 553, 554}
ADDRESS_HEADERS = ("From", "To", "Reply-To")
# An address with nothing to encode or parse: ASCII atext, dots and one @ (RFC 5322 addr-spec).
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
ENCODED_WORD_BYTES = 39  # 52 base64 characters: "Subject: =?utf-8?b?…?=" stays under 78 columns


# What an `anymail` provider may load: one of django-anymail's ESP backends. The path is
# imported and called with the config's options, so a free path ran anything on the server
# (Django's file backend writes wherever `file_path` says); the console backend prints every
# message, secrets included, to the log.
ESP_BACKEND = re.compile(r"anymail\.backends\.[a-z0-9_]+\.EmailBackend")
NOT_AN_ESP = frozenset({"anymail.backends.console.EmailBackend"})


def check_email_backend(path: object) -> None:
    """The one rule for an anymail provider's backend; ProviderMisconfigured naming it."""
    if not isinstance(path, str) or not ESP_BACKEND.fullmatch(path) or path in NOT_AN_ESP:
        raise ProviderMisconfigured(
            _("%(backend)s is not an email service backend: use one of django-anymail's, e.g. anymail.backends.mailgun.EmailBackend.")
            % {"backend": path}
        )


def secret(provider: Provider, name: str) -> str:
    """A credential: named in the provider's config (`"password_secret": "SMTP"`) and held in
    settings.MAILROOM_SECRETS (environment MAILROOM_SECRET_SMTP), else typed in the console
    and sealed on the provider (`password` for `password_secret`)."""
    key = provider.config.get(name)
    if not key:
        if not provider.sealed_credentials:
            return ""
        try:
            return unseal_credentials(provider.sealed_credentials).get(name.removesuffix("_secret"), "")
        except SecretUnavailable as error:
            raise ProviderMisconfigured(str(error)) from error
    if key not in settings.MAILROOM_SECRETS:
        raise ProviderMisconfigured(_("Secret %(key)s is not set (environment MAILROOM_SECRET_%(key)s).") % {"key": key})
    return settings.MAILROOM_SECRETS[key]


def message_id_for(message: OutboxMessage) -> str:
    """Deterministic: the same message always carries the same Message-ID, across retries.
    Its right-hand side is the sending domain (the From address's), unless
    MAILROOM_MESSAGE_ID_DOMAIN names one."""
    domain = settings.MAILROOM_MESSAGE_ID_DOMAIN or sending_domain(message.from_address or current_site().default_from)
    tag = hmac.new(settings.SECRET_KEY.encode(), str(message.pk).encode(), hashlib.sha256).hexdigest()[:12]
    return f"<m{message.pk}.{tag}@{domain}>"


@lru_cache(maxsize=256)
def sending_domain(from_address: str) -> str:
    domain = envelope_address(from_address).rpartition("@")[2].strip().lower()
    return domain if domain and re.fullmatch(r"[a-z0-9.-]+", domain) else "localhost"


UNSUBSCRIBE_MARKER = "__MAILROOM_UNSUBSCRIBE__"


def unsubscribe_url(message: OutboxMessage) -> str:
    """Made once per message object: its header and its footer carry the same link."""
    url = message.__dict__.get("_unsubscribe_url")
    if url is None:
        url = message.__dict__["_unsubscribe_url"] = public_link(message.pk, UNSUBSCRIBE_MARKER)
    return url


# --- headers -----------------------------------------------------------------------------------
def _encode_header(value: str) -> str:
    if "\n" in value or "\r" in value:  # a value never starts a header of its own
        value = " ".join(value.split())
    if value.isascii():
        return value
    return encoded_words(value)


def _encode_list_header(value: str) -> str:
    """List-Unsubscribe and the like: URLs in angle brackets go out as they are (an
    encoded word hides the URL from every mail client), folded after commas when long."""
    value = " ".join(value.split())
    if not value.isascii():
        return _encode_header(value)
    if len(value) > 60 and "," in value:
        value = ",\r\n ".join(part.strip() for part in value.split(","))
    return value


LIST_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post", "List-Help", "List-Subscribe", "List-Owner", "List-Archive"})


def encode_header_line(name: str, value: str) -> str:
    if name in ADDRESS_HEADERS:
        return f"{name}: {_encode_address(value)}"
    if name in LIST_HEADERS:
        return f"{name}: {_encode_list_header(str(value))}"
    return f"{name}: {_encode_header(str(value))}"


def encoded_words(value: str) -> str:
    """RFC 2047 base64 encoded words of at most ENCODED_WORD_BYTES bytes each, never
    splitting a UTF-8 character, folded onto continuation lines."""
    data = value.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        end = min(start + ENCODED_WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: back off
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode() + "?=")
        start = end
    return "\r\n ".join(words)


def _encode_address(value: str) -> str:
    if PLAIN_ADDRESS.fullmatch(value):
        return value
    return _encode_named_address(value)


@lru_cache(maxsize=256)
def _encode_named_address(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address


@lru_cache(maxsize=256)
def envelope_address(value: str) -> str:
    return value if PLAIN_ADDRESS.fullmatch(value) else parseaddr(value)[1]


_date = (0, "")


def _date_header() -> str:
    """RFC 5322 date of this second (formatted once a second, not once a message)."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now))
    return _date[1]


def build_headers(message: OutboxMessage) -> dict[str, str]:
    site = current_site()
    headers = {
        "From": message.from_address or site.default_from,
        "To": message.to_address,
        "Subject": message.subject,
        "Date": _date_header(),
        "Message-ID": message.message_id or message_id_for(message),
    }
    if message.is_marketing:
        url = unsubscribe_url(message)
        # RFC 8058 one-click unsubscribe.
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if site.reply_to and not any(name.lower() == "reply-to" for name in message.headers or {}):
        headers["Reply-To"] = site.reply_to
    headers.update(message.headers or {})
    return headers


def attach_languages(messages: list[OutboxMessage]) -> None:
    """Note each marketing email's contact's language on it, for the words Mailroom adds
    itself (the footer's): one query for a batch instead of one per message."""
    wanted = {m.contact_id for m in messages if m.is_marketing and m.contact_id and "_language" not in m.__dict__}
    if not wanted:
        return
    locales = dict(Contact.objects.filter(pk__in=wanted).values_list("pk", "locale"))
    for message in messages:
        if message.contact_id in wanted:
            message.__dict__["_language"] = locales.get(message.contact_id) or None


def message_language(message: OutboxMessage) -> str | None:
    """The language of the words Mailroom adds to a message: its contact's (the body is
    already the contact's language variant), else the active one."""
    if "_language" not in message.__dict__ and message.contact_id:
        locale = Contact.objects.filter(pk=message.contact_id).values_list("locale", flat=True).first()
        message.__dict__["_language"] = locale or None
    return message.__dict__.get("_language") or get_language()


def marketing_footer(message: OutboxMessage, *, with_link: bool = True) -> tuple[str, str]:
    """The visible unsubscribe link and postal address every marketing email must carry
    (the link only when the body does not already have one), labelled in the contact's language."""
    url = unsubscribe_url(message)
    address = current_site().postal_address
    label = _unsubscribe_label(message_language(message))
    link_text = f"{label}: {url}\n" if with_link else ""
    link_html = f'<a href="{url}">{label}</a><br>' if with_link else ""
    text = f"\n\n--\n{link_text}{address}\n"
    html = f'<div style="font-size:12px;color:#666;margin-top:24px">{link_html}{escape(address)}</div>'
    return text, html


@lru_cache(maxsize=32)
def _unsubscribe_label(language: str | None) -> str:
    with translation.override(language):  # looked up once per language, not twice per email
        return _("Unsubscribe")


def final_bodies(message: OutboxMessage, *, with_secrets: bool = True) -> tuple[str, str]:
    """Text and HTML exactly as they go out: per-message links filled in, the secrets of a
    sensitive message filled in (only when the sender attached them; `with_secrets=False`
    hides them, for what is stored), and the marketing footer (unsubscribe link, postal
    address) added."""
    has_link = UNSUBSCRIBE_MARKER in message.body_html or UNSUBSCRIBE_MARKER in message.body_text
    text, html = fill_message_marker(message.body_text, message.pk), fill_message_marker(message.body_html, message.pk)
    if message.is_sensitive:
        text, html = (reveal(message, text), reveal(message, html)) if with_secrets else (redact(text), redact(html))
    if message.is_marketing:
        footer_text, footer_html = marketing_footer(message, with_link=not has_link)
        text = (text or "") + footer_text
        if html:
            html = html.replace("</body>", footer_html + "</body>") if "</body>" in html else html + footer_html
    return text, html


# --- MIME --------------------------------------------------------------------------------------
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


# --- SMTP --------------------------------------------------------------------------------------
def _classify(code: int, text: str, *, recipient: bool) -> Result:
    response = f"{code} {text}"
    if code >= 500:
        return permanent(response, hard_bounce=recipient and code in HARD_BOUNCE_CODES)
    return transient(response)


def _reply_text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload with its terminator: smtplib's `data()` transparency (RFC 5321
    4.5.2: a line starting with "." gets another), a final CRLF, then "."."""
    if raw.startswith(b"."):
        raw = b"." + raw
    raw = raw.replace(b"\n.", b"\n..")
    return raw + (b".\r\n" if raw.endswith(b"\r\n") else b"\r\n.\r\n")


@dataclass(slots=True)
class Prepared:
    """A message ready for the wire."""

    raw: bytes
    envelope_from: str
    recipient: str
    message_id: str

    @property
    def pipelinable(self) -> bool:
        return self.envelope_from.isascii() and self.recipient.isascii()  # else SMTPUTF8: smtplib's path


class SMTPSession(Session):
    """One SMTP connection per batch; reconnects once if the server drops it.

    When the server announces PIPELINING (RFC 2920; unless the provider's config says
    "pipelining": false), a message costs one round trip: its MAIL FROM, RCPT TO and DATA
    go out in the same write as the previous message's content, so one read returns the
    previous message's final reply and this one's three envelope replies. Every reply is
    read, in order, before a result is returned, so each message gets its own outcome (a
    refused recipient or content fails that message only). Without PIPELINING, smtplib's
    `sendmail` does the transaction."""

    def __enter__(self) -> "SMTPSession":
        self.connection = None
        self.ahead: tuple[OutboxMessage, Prepared] | None = None  # its envelope is on the wire, replies unread
        self._connect()
        return self

    def _connect(self) -> None:
        config = self.provider.config
        host, port = config.get("host", "127.0.0.1"), int(config.get("port", 25))
        try:
            factory = smtplib.SMTP_SSL if config.get("ssl") else smtplib.SMTP
            connection = factory(host, port, timeout=float(config.get("timeout", 30)))
            if config.get("starttls") and not config.get("ssl"):
                connection.starttls()
            if config.get("username"):
                connection.login(config["username"], secret(self.provider, "password_secret"))
            connection.ehlo_or_helo_if_needed()
        except smtplib.SMTPAuthenticationError as error:
            raise ProviderError(f"SMTP login refused: {error.smtp_code} {error.smtp_error!r}", permanent=True) from error
        except (OSError, smtplib.SMTPException) as error:
            raise ProviderError(f"SMTP {host}:{port} unreachable: {error}") from error
        self.connection = connection
        self.pipelining = bool(connection.does_esmtp and connection.has_extn("pipelining") and config.get("pipelining", True))
        self.announces_size = bool(connection.does_esmtp and connection.has_extn("size"))

    def prepare(self, message: OutboxMessage) -> Prepared:
        wire = compose(message, self.provider)
        return Prepared(wire.raw, wire.envelope_from, message.to_address, wire.headers["Message-ID"])

    def _envelope(self, prepared: Prepared) -> bytes:
        size = f" SIZE={len(prepared.raw)}" if self.announces_size else ""
        return f"MAIL FROM:<{prepared.envelope_from}>{size}\r\nRCPT TO:<{prepared.recipient}>\r\nDATA\r\n".encode()

    def send(self, message: OutboxMessage) -> Result:
        return self.send_ahead(message, None)

    def send_ahead(self, message: OutboxMessage, following: OutboxMessage | None) -> Result:
        ahead, self.ahead = self.ahead, None
        if ahead is not None and ahead[0] is not message:  # not the message announced: start afresh
            self._drop()
            ahead = None
        if ahead is None:
            if self.connection is None:
                try:
                    self._connect()
                except ProviderError as error:
                    return transient(str(error), broken_session=True)
            prepared = self.prepare(message)
            if not (self.pipelining and prepared.pipelinable):
                return self._sendmail(prepared)
            try:
                self.connection.sock.sendall(self._envelope(prepared))
            except OSError as error:
                self._drop()
                return transient(f"connection lost: {error}", broken_session=True)
        else:
            prepared = ahead[1]
        try:
            return self._complete(message, prepared, following)
        except (TimeoutError, smtplib.SMTPException, OSError) as error:  # out of step with the server: start afresh
            self._drop()
            return transient(f"connection lost: {error}", broken_session=True)

    def _complete(self, message: OutboxMessage, prepared: Prepared, following: OutboxMessage | None) -> Result:
        """Read the envelope's three replies, then send the content (or end the failed
        transaction) together with the following message's envelope, and read the result."""
        connection = self.connection
        mail, rcpt, data = connection.getreply(), connection.getreply(), connection.getreply()
        accepted = mail[0] == 250 and rcpt[0] in (250, 251)
        chain, chained = b"", None
        if following is not None:
            try:
                next_prepared = self.prepare(following)
            except Exception:  # prepared again, and its error reported, when its own turn comes
                next_prepared = None
            if next_prepared is not None and next_prepared.pipelinable:
                chain, chained = self._envelope(next_prepared), (following, next_prepared)
        if accepted and data[0] == 354:
            connection.sock.sendall(dot_stuffed(prepared.raw) + chain)
            self.ahead = chained
            code, text = connection.getreply()
            # After the end of the data the transaction is over whatever the reply: no RSET.
            return (
                sent(f"{code} {_reply_text(text)}", provider_message_id=prepared.message_id)
                if code == 250
                else _classify(code, _reply_text(text), recipient=False)
            )
        # The transaction failed. A server may only say 354 when a recipient was accepted;
        # should it do so anyway, an empty message to nobody ends the data first.
        end_data = b".\r\n" if data[0] == 354 else b""
        connection.sock.sendall(end_data + b"RSET\r\n" + chain)
        self.ahead = chained
        if end_data:
            connection.getreply()
        if connection.getreply()[0] != 250:
            self._drop()
        if mail[0] != 250:
            return _classify(mail[0], _reply_text(mail[1]), recipient=False)
        if not accepted:
            return _classify(rcpt[0], _reply_text(rcpt[1]), recipient=True)
        return _classify(data[0], _reply_text(data[1]), recipient=False)

    def _sendmail(self, prepared: Prepared) -> Result:
        try:
            self.connection.sendmail(prepared.envelope_from, [prepared.recipient], prepared.raw)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return _classify(code, _reply_text(text), recipient=True)
        except smtplib.SMTPResponseException as error:
            self._reset()
            return _classify(error.smtp_code, _reply_text(error.smtp_error), recipient=False)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            return transient(f"connection lost: {error}", broken_session=True)
        return sent("250 accepted", provider_message_id=prepared.message_id)

    def _reset(self) -> None:
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        self.ahead = None
        try:
            if self.connection is not None:
                self.connection.close()
        finally:
            self.connection = None

    def close(self) -> None:
        if self.ahead is not None:
            # A message's envelope is on the wire: closing without its data makes the
            # server drop that transaction, and the message goes on to another session.
            self._drop()
        if self.connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.connection.quit()
            self._drop()


class DjangoBackendSession(Session):
    """An ESP through django-anymail
    (config: {"backend": "anymail.backends.mailgun.EmailBackend", "options": {...}})."""

    def __enter__(self) -> "DjangoBackendSession":
        from django.core.mail import get_connection

        backend = self.provider.config.get("backend")
        if not backend:
            raise ProviderMisconfigured(_("This provider has no email backend configured."))
        check_email_backend(backend)  # a row that got in another way loads nothing
        options = dict(self.provider.config.get("options", {}))
        option = self.provider.config.get("credential_option")  # the API key: named secret or sealed
        if option and (value := secret(self.provider, "api_key_secret")):
            options[option] = value
        try:
            self.connection = get_connection(backend, fail_silently=False, **options)
            self.connection.open()
        except ImportError as error:
            raise ProviderMisconfigured(str(error)) from error
        return self

    def send(self, message: OutboxMessage) -> Result:
        wire = compose(message, self.provider)
        headers = dict(wire.headers)
        from_address, to_address = headers.pop("From"), headers.pop("To")
        headers.pop("Subject")
        reply_to = headers.pop("Reply-To", None)
        outgoing = WireEmail(
            wire,
            subject=message.subject,
            body=wire.text,
            from_email=from_address,
            to=[to_address],
            reply_to=[reply_to] if reply_to else None,
            headers=headers,
            connection=self.connection,
        )
        if wire.html:
            outgoing.attach_alternative(wire.html, "text/html")
        started = time.perf_counter()
        try:
            outgoing.send()
        except Exception as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            if status and 400 <= status < 500 and status != 429:
                return permanent(f"{status} {error}")
            return transient(str(error))
        status = getattr(outgoing, "anymail_status", None)
        provider_id = getattr(status, "message_id", None) or headers.get("Message-ID", "")
        return sent(f"accepted in {1000 * (time.perf_counter() - started):.0f} ms", provider_message_id=str(provider_id))

    def close(self) -> None:
        self.connection.close()


class WireMime(email.message.Message):
    """The composed bytes as a parsed message whose serialisation is those bytes: an ESP
    backend that sends raw MIME (Amazon SES) sends exactly the composition, DKIM intact,
    with List-Unsubscribe as a plain URL (Django's own message() folds a long one into
    RFC 2047 encoded words that no mail client reads as a URL)."""

    wire_bytes: bytes | None = None

    def as_bytes(self, unixfrom: bool = False, policy=None, linesep: str | None = None) -> bytes:
        if self.wire_bytes is None:
            return super().as_bytes(unixfrom=unixfrom, policy=policy)
        return self.wire_bytes if linesep in (None, "\r\n") else self.wire_bytes.replace(b"\r\n", linesep.encode())

    def as_string(self, unixfrom: bool = False, maxheaderlen: int = 0, policy=None, linesep: str | None = None) -> str:
        if self.wire_bytes is None:
            return super().as_string(unixfrom=unixfrom, maxheaderlen=maxheaderlen, policy=policy)
        return self.as_bytes(linesep=linesep).decode("utf-8", "replace")

    def __bytes__(self) -> bytes:
        return self.as_bytes()


class WireEmail(EmailMultiAlternatives):
    """An EmailMultiAlternatives made from a composition: API backends read its subject,
    bodies and headers; raw-MIME backends get the composed bytes from message()."""

    def __init__(self, wire: Wire, **kwargs):
        super().__init__(**kwargs)
        self.wire = wire

    def message(self, *, policy=None) -> WireMime:
        parsed = email.message_from_bytes(self.wire.raw, _class=WireMime)
        parsed.wire_bytes = self.wire.raw
        return parsed
