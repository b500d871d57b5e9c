"""Mailroom as a Django email backend: `EMAIL_BACKEND = "messaging.backend.EmailBackend"`
turns `send_mail`, `EmailMessage` and `EmailMultiAlternatives` into outbox messages, which
then get Mailroom's retries, failover, logs and console.

How a Django email maps onto the outbox (one `to_address` per row):
- one outbox message per distinct recipient address of To, Cc and Bcc, all written in one
  transaction (all or none) and sharing `metadata["email_group"]`;
- each carries the email's To and Cc headers as written, so every recipient sees the same
  email; Bcc is never a header (a Bcc recipient's copy shows To and Cc only);
- the first text/html alternative is the HTML body (a body whose `content_subtype` is
  "html" is the HTML body too); attachments and inline images (a part with a Content-ID)
  are stored with each message (messaging.attachments: the same limits and checks);
- Reply-To and extra headers go on the wire; `X-Mailroom-Topic` (a topic key) and
  `X-Mailroom-Dedup-Key` are read and removed. The topic is otherwise
  MAILROOM_BACKEND_TOPIC (none when no topic has that key); a dedup key becomes
  `<key>:<address>` per recipient, so sending the same email again queues nothing twice;
- priority is transactional.
"""

import logging
import uuid
from email.message import Message, MIMEPart
from email.utils import getaddresses

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils.translation import gettext as _

from messaging.attachments import NewAttachment
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput, MailroomError
from messaging.models import Channel, OutboxMessage, Topic

logger = logging.getLogger(__name__)

TOPIC_HEADER = "X-Mailroom-Topic"
DEDUP_HEADER = "X-Mailroom-Dedup-Key"
# Headers the outbox composes itself: an email's own value would contradict it.
COMPOSED = frozenset({"from", "subject", "date", "message-id", "mime-version", "content-type", "content-transfer-encoding", "bcc"})


class EmailBackend(BaseEmailBackend):
    """Queues each email in the outbox instead of sending it (see the module's docstring)."""

    # Read by the ESP provider session: a provider never sends through this backend (a loop).
    delivers_through_outbox = True

    def __init__(self, fail_silently: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.fail_silently = fail_silently

    def send_messages(self, email_messages: list[EmailMessage]) -> int:
        queued = 0
        for email_message in email_messages:
            try:
                queued += bool(queue_email(email_message))
            except MailroomError:
                if not self.fail_silently:
                    raise
                logger.warning("an email to %s could not be queued", ", ".join(email_message.recipients()), exc_info=True)
        return queued


def _header(headers: dict[str, str], name: str) -> str:
    for key in list(headers):
        if key.lower() == name.lower():
            return str(headers.pop(key)).strip()
    return ""


def _bodies(email_message: EmailMessage) -> tuple[str, str]:
    body = str(email_message.body or "")
    if getattr(email_message, "content_subtype", "plain") == "html":
        return "", body
    html = next((str(content) for content, mimetype in getattr(email_message, "alternatives", []) if mimetype == "text/html"), "")
    return body, html


def _attachment(item) -> NewAttachment:
    """An EmailMessage.attachments item: (filename, content, mimetype) or a MIME part."""
    if isinstance(item, Message | MIMEPart):
        content = item.get_payload(decode=True) if not isinstance(item, MIMEPart) or item.is_multipart() else item.get_content()
        if isinstance(content, str):
            content = content.encode("utf-8")
        content_id = (item.get("Content-ID") or "").strip().strip("<>")
        return NewAttachment(item.get_filename() or "attachment", content or b"", item.get_content_type(), content_id)
    filename, content, mimetype = item
    return NewAttachment(filename or "attachment", content.encode("utf-8") if isinstance(content, str) else bytes(content), mimetype or "")


def _topic(key: str, *, from_header: bool) -> Topic | None:
    topic = Topic.objects.filter(key=key).first() if key else None
    if topic is None and from_header:
        raise InvalidInput(
            _("No topic has the key “%(key)s” (%(header)s).") % {"key": key, "header": TOPIC_HEADER},
            fields={"topic": [_("Unknown topic.")]},
        )
    return topic


def _recipients(email_message: EmailMessage) -> list[str]:
    """The distinct addresses of To, Cc and Bcc (a display name stays in the headers)."""
    seen: dict[str, str] = {}
    for _name, address in getaddresses([str(item) for item in [*email_message.to, *email_message.cc, *email_message.bcc]]):
        if address:
            seen.setdefault(address.strip().lower(), address.strip())
    return list(seen.values())


@transaction.atomic
def queue_email(email_message: EmailMessage) -> list[OutboxMessage]:
    """One Django email → one outbox message per recipient (all or none)."""
    headers = {str(name): str(value) for name, value in (email_message.extra_headers or {}).items()}
    topic_key = _header(headers, TOPIC_HEADER)
    dedup_key = _header(headers, DEDUP_HEADER)
    headers = {name: value for name, value in headers.items() if name.lower() not in COMPOSED and name.lower() not in ("to", "cc")}
    if email_message.to:
        headers["To"] = ", ".join(email_message.to)
    if email_message.cc:
        headers["Cc"] = ", ".join(email_message.cc)
    if email_message.reply_to:
        headers["Reply-To"] = ", ".join(email_message.reply_to)
    topic = _topic(topic_key, from_header=True) if topic_key else _topic(settings.MAILROOM_BACKEND_TOPIC, from_header=False)
    text, html = _bodies(email_message)
    attachments = [_attachment(item) for item in email_message.attachments]
    group = uuid.uuid4().hex
    queued = []
    for address in _recipients(email_message):
        queued.append(
            enqueue_message(
                channel=Channel.EMAIL,
                to=address,
                from_address=email_message.from_email or "",
                subject=str(email_message.subject or ""),
                text=text,
                html=html,
                topic=topic,
                priority=OutboxMessage.Priority.TRANSACTIONAL,
                dedup_key=f"{dedup_key}:{address.lower()}"[:200] if dedup_key else None,
                headers=dict(headers),
                metadata={"email_group": group},
                track_links=False,
                attachments=attachments,
                verbatim=True,
            )
        )
    return queued
