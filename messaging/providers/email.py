"""Building email bytes fast, and the SMTP and Django-backend (anymail) sessions.

The MIME is written directly from pre-encoded parts (quoted-printable through binascii,
headers encoded once) instead of through `email.message`, which is several times slower
per message; the structure is the plain multipart/alternative every client reads.
"""

import binascii
import contextlib
import hashlib
import hmac
import smtplib
import time
import uuid
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr

from django.conf import settings
from django.utils.html import escape
from django.utils.translation import gettext as _

from messaging.models import OutboxMessage, Provider
from messaging.providers.base import ProviderError, ProviderMisconfigured, Result, Session, permanent, sent, transient
from messaging.tracking import fill_message_marker, public_link

HARD_BOUNCE_CODES = {550, 551, 553, 554}


def secret(provider: Provider, name: str) -> str:
    """A credential named in the provider's config and held in settings.MAILROOM_SECRETS."""
    key = provider.config.get(name)
    if not key:
        return ""
    if key not in settings.MAILROOM_SECRETS:
        raise ProviderMisconfigured(_("Secret %(key)s is not set (environment MAILROOM_SECRET_%(key)s).") % {"key": key})
    return settings.MAILROOM_SECRETS[key]


def message_id_for(message: OutboxMessage) -> str:
    """Deterministic: the same message always carries the same Message-ID, across retries."""
    domain = settings.MAILROOM_MESSAGE_ID_DOMAIN
    tag = hmac.new(settings.SECRET_KEY.encode(), str(message.pk).encode(), hashlib.sha256).hexdigest()[:12]
    return f"<m{message.pk}.{tag}@{domain}>"


UNSUBSCRIBE_MARKER = "__MAILROOM_UNSUBSCRIBE__"


def unsubscribe_url(message: OutboxMessage) -> str:
    return public_link(message.pk, UNSUBSCRIBE_MARKER)


def _encode_header(value: str) -> str:
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def _encode_address(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address


def build_headers(message: OutboxMessage) -> dict[str, str]:
    headers = {
        "From": message.from_address or settings.MAILROOM_DEFAULT_FROM,
        "To": message.to_address,
        "Subject": message.subject,
        "Date": formatdate(localtime=False),
        "Message-ID": message.message_id or message_id_for(message),
    }
    if message.is_marketing:
        url = unsubscribe_url(message)
        # RFC 8058 one-click unsubscribe.
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    headers.update(message.headers or {})
    return headers


def marketing_footer(message: OutboxMessage, *, with_link: bool = True) -> tuple[str, str]:
    """The visible unsubscribe link and postal address every marketing email must carry
    (the link only when the body does not already have one)."""
    url = unsubscribe_url(message)
    address = settings.MAILROOM_SENDER_ADDRESS
    link_text = f"{_('Unsubscribe')}: {url}\n" if with_link else ""
    link_html = f'<a href="{url}">{_("Unsubscribe")}</a><br>' if with_link else ""
    text = f"\n\n--\n{link_text}{address}\n"
    html = f'<div style="font-size:12px;color:#666;margin-top:24px">{link_html}{escape(address)}</div>'
    return text, html


def final_bodies(message: OutboxMessage) -> tuple[str, str]:
    """Text and HTML exactly as they go out: per-message links filled in, and the marketing
    footer (unsubscribe link, postal address) added."""
    has_link = UNSUBSCRIBE_MARKER in message.body_html or UNSUBSCRIBE_MARKER in message.body_text
    text, html = fill_message_marker(message.body_text, message.pk), fill_message_marker(message.body_html, message.pk)
    if message.is_marketing:
        footer_text, footer_html = marketing_footer(message, with_link=not has_link)
        text = (text or "") + footer_text
        if html:
            html = html.replace("</body>", footer_html + "</body>") if "</body>" in html else html + footer_html
    return text, html


def _qp(text: str) -> bytes:
    return binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8")).replace(b"\n", b"\r\n")


def build_mime(message: OutboxMessage, headers: dict[str, str] | None = None) -> bytes:
    headers = headers or build_headers(message)
    text, html = final_bodies(message)
    lines = []
    for name, value in headers.items():
        if name in ("From", "To", "Reply-To"):
            value = _encode_address(value)
        else:
            value = _encode_header(str(value))
        lines.append(f"{name}: {value}")
    lines.append("MIME-Version: 1.0")
    head = "\r\n".join(lines).encode("utf-8")
    if text and html:
        boundary = f"=_mailroom_{uuid.uuid4().hex}"
        body = b"".join(
            [
                f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
                f"--{boundary}\r\n".encode(),
                b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n',
                _qp(text),
                f"\r\n--{boundary}\r\n".encode(),
                b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n',
                _qp(html),
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
    else:
        subtype = "html" if html else "plain"
        body = (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'.encode()
            + _qp(html or text)
            + b"\r\n"
        )
    raw = head + b"\r\n" + body
    return raw


def dkim_sign(raw: bytes, provider: Provider) -> bytes:
    dkim_config = provider.config.get("dkim")
    if not dkim_config:
        return raw
    import dkim

    key = secret(provider, "dkim_key_secret") if "dkim_key_secret" in provider.config else dkim_config.get("private_key", "")
    signature = dkim.sign(
        raw,
        dkim_config["selector"].encode(),
        dkim_config["domain"].encode(),
        key.encode(),
        include_headers=[b"From", b"To", b"Subject", b"Date", b"Message-ID"],
    )
    return signature + raw


def _classify(code: int, text: str, *, recipient: bool) -> Result:
    response = f"{code} {text}"
    if code >= 500:
        return permanent(response, hard_bounce=recipient and code in HARD_BOUNCE_CODES)
    return transient(response)


class SMTPSession(Session):
    """One SMTP connection per batch; reconnects once if the server drops it."""

    def __enter__(self) -> "SMTPSession":
        self.connection = None
        self._connect()
        return self

    def _connect(self) -> None:
        config = self.provider.config
        host, port = config.get("host", "127.0.0.1"), int(config.get("port", 25))
        try:
            connection = smtplib.SMTP(host, port, timeout=float(config.get("timeout", 30)))
            if config.get("starttls"):
                connection.starttls()
            if config.get("username"):
                connection.login(config["username"], secret(self.provider, "password_secret"))
        except smtplib.SMTPAuthenticationError as error:
            raise ProviderError(f"SMTP login refused: {error.smtp_code} {error.smtp_error!r}", permanent=True) from error
        except (OSError, smtplib.SMTPException) as error:
            raise ProviderError(f"SMTP {host}:{port} unreachable: {error}") from error
        self.connection = connection

    def send(self, message: OutboxMessage) -> Result:
        if self.connection is None:
            try:
                self._connect()
            except ProviderError as error:
                return transient(str(error), broken_session=True)
        headers = build_headers(message)
        raw = dkim_sign(build_mime(message, headers), self.provider)
        envelope_from = parseaddr(headers["From"])[1]
        try:
            self.connection.sendmail(envelope_from, [message.to_address], raw)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return _classify(code, text.decode(errors="replace") if isinstance(text, bytes) else str(text), recipient=True)
        except smtplib.SMTPResponseException as error:
            text = error.smtp_error.decode(errors="replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
            self._reset()
            return _classify(error.smtp_code, text, recipient=False)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            return transient(f"connection lost: {error}", broken_session=True)
        return sent("250 accepted", provider_message_id=headers["Message-ID"])

    def _reset(self) -> None:
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        try:
            if self.connection is not None:
                self.connection.close()
        finally:
            self.connection = None

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.connection.quit()
            self._drop()


class DjangoBackendSession(Session):
    """Any Django email backend, e.g. an ESP through django-anymail
    (config: {"backend": "anymail.backends.mailgun.EmailBackend", "options": {...}})."""

    def __enter__(self) -> "DjangoBackendSession":
        from django.core.mail import get_connection

        backend = self.provider.config.get("backend")
        if not backend:
            raise ProviderMisconfigured(_("This provider has no email backend configured."))
        try:
            self.connection = get_connection(backend, fail_silently=False, **self.provider.config.get("options", {}))
            self.connection.open()
        except ImportError as error:
            raise ProviderMisconfigured(str(error)) from error
        return self

    def send(self, message: OutboxMessage) -> Result:
        from django.core.mail import EmailMultiAlternatives

        headers = build_headers(message)
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body_text,
            from_email=headers.pop("From"),
            to=[headers.pop("To")],
            headers={k: v for k, v in headers.items() if k != "Subject"},
            connection=self.connection,
        )
        if message.body_html:
            email.attach_alternative(message.body_html, "text/html")
        started = time.perf_counter()
        try:
            email.send()
        except Exception as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            if status and 400 <= status < 500 and status != 429:
                return permanent(f"{status} {error}")
            return transient(str(error))
        status = getattr(email, "anymail_status", None)
        provider_id = getattr(status, "message_id", None) or headers.get("Message-ID", "")
        return sent(f"accepted in {1000 * (time.perf_counter() - started):.0f} ms", provider_message_id=str(provider_id))

    def close(self) -> None:
        self.connection.close()
