"""Sending through an email service (ESP) with a django-anymail backend."""

import email
import email.message
import re
import time
from email.message import MIMEPart

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.utils.translation import gettext as _

from messaging.models import OutboxMessage
from messaging.providers.base import ProviderMisconfigured, Result, Session, permanent, secret, sent, transient
from messaging.providers.email.mime import File, Wire, compose

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


class OutboxLoop(ProviderMisconfigured, ImproperlyConfigured):
    """A provider set to send through Mailroom's own Django email backend."""


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
        except ImportError as error:
            raise ProviderMisconfigured(str(error)) from error
        if getattr(self.connection, "delivers_through_outbox", False):  # it would queue what it sends, forever
            raise OutboxLoop(_("%(backend)s queues email in Mailroom's outbox: a provider cannot send through it.") % {"backend": backend})
        self.connection.open()
        return self

    def send(self, message: OutboxMessage) -> Result:
        wire = compose(message, self.provider)
        headers = dict(wire.headers)
        from_address = headers.pop("From")
        # The one recipient of this row: the To and Cc headers of an email from the Django
        # backend name the others, who each have a row of their own.
        headers.pop("To"), headers.pop("Cc", None), headers.pop("Subject")
        to_address = message.to_address
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
        for file in wire.files:
            outgoing.attach(file_part(file))
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


def file_part(file: File) -> MIMEPart:
    """An attachment as an API backend reads it: anymail sends an inline part (its
    Content-ID set) as an inline image the HTML's cid: reference shows."""
    part = MIMEPart()
    maintype, _slash, subtype = file.content_type.partition("/")
    part.set_content(
        file.content,
        maintype=maintype,
        subtype=subtype or "octet-stream",
        disposition="inline" if file.content_id else "attachment",
        filename=file.filename,
        cid=f"<{file.content_id}>" if file.content_id else None,
    )
    return part


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
