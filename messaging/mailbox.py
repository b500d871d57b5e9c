"""Email inboxes read over IMAP (seed 001): replies, bounce reports and complaints that come
back to a mailbox rather than through an ESP's webhook.

Every minute the cluster reads the new mail of each active email inbox with an IMAP host
(`poll_email_inboxes`). Each mail becomes one InboxMessage, keyed by its Message-ID (or a
hash of its bytes), and is one of:
- a bounce report (RFC 3464 DSN, multipart/report; report-type=delivery-status): a
  permanent failure (Action: failed, Status 5.x.x) bounces the message it names, which
  suppresses the address; a delay or 4.x.x records nothing;
- a complaint (RFC 5965 ARF, report-type=feedback-report, Feedback-Type: abuse): a complaint
  on the message it names (suppression, unsubscribe, the campaign's complaint rate);
- an auto-reply (RFC 3834 Auto-Submitted, out-of-office): kept, counted as nothing;
- anything else is a reply: `receive_inbound`, like an SMS reply.

A report only ever acts on a message of ours that it names, and on that message's own
address: a forged report cannot suppress an address we did not write to. Mail is marked
\\Seen, never deleted; the last UID read (per UIDVALIDITY) makes each poll read only new
mail, and the external ids make a re-read (a crash, a UIDVALIDITY change) change nothing.
"""

import contextlib
import hashlib
import imaplib
import ipaddress
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from messaging.delivery.inbound import _storable, named_message, receive_inbound, record_delivery_event
from messaging.models import DeliveryEvent, Inbox, InboxMessage

logger = logging.getLogger(__name__)

TIMEOUT = 30  # seconds per network operation: a stalled server fails the poll, not the cluster
MAX_PER_POLL = 200  # mails per poll; the rest wait a minute (a poll stays far under the cluster timeout)
MAX_BYTES = 2_000_000  # read of one mail: enough for any report or reply; a huge one is cut, not refused
AUTO_REPLY_SUBJECT = re.compile(r"^\s*(auto(matic)?[ -]?reply|autoreply|out of (the )?office|réponse automatique)\b", re.I)


class MailboxError(Exception):
    """The mailbox could not be read (connection, TLS, login, folder): kept on the inbox."""


@dataclass
class PollResult:
    read: int = 0
    error: str = ""


# --- settings ------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_imap_settings(inbox: Inbox) -> None:
    """The one rule for an inbox's IMAP settings; ValidationError naming the field. A
    password never crosses the network in clear, except to this machine or to a host
    the deployment explicitly allows (MAILROOM_IMAP_PLAINTEXT_HOSTS)."""
    if not inbox.imap_host:
        return
    errors = {}
    if inbox.channel != "email":
        errors["imap_host"] = _("Only an email inbox can be read over IMAP.")
    if not inbox.imap_username:
        errors["imap_username"] = _("An IMAP mailbox needs a username.")
    if not inbox.imap_password_secret:
        errors["imap_password_secret"] = _("Name the secret that holds the IMAP password.")
    plaintext_allowed = is_loopback(inbox.imap_host) or inbox.imap_host.lower() in settings.MAILROOM_IMAP_PLAINTEXT_HOSTS
    if inbox.imap_security == Inbox.Security.NONE and not plaintext_allowed:
        errors["imap_security"] = _(
            "Without TLS the password would cross the network in clear: only for this machine (127.0.0.1) "
            "or a host listed in MAILROOM_IMAP_PLAINTEXT_HOSTS."
        )
    if errors:
        raise ValidationError(errors)


def imap_password(inbox: Inbox) -> str:
    """The password, from the named secret (settings.MAILROOM_SECRETS), never from the row."""
    name = inbox.imap_password_secret
    if name not in settings.MAILROOM_SECRETS:
        raise MailboxError(_("Secret %(key)s is not set (environment MAILROOM_SECRET_%(key)s).") % {"key": name})
    return settings.MAILROOM_SECRETS[name]


# --- polling -------------------------------------------------------------------------------------
def poll_email_inboxes() -> int:
    """The minute schedule: every active email inbox with an IMAP host; mails read."""
    read = 0
    for inbox in Inbox.objects.filter(channel="email", is_active=True).exclude(imap_host=""):
        try:
            read += poll_email_inbox(inbox=inbox).read
        except Exception:  # one inbox's surprise (a database hiccup) must not starve the others
            logger.exception("inbox %s: IMAP poll failed", inbox.pk)
    return read


def poll_email_inbox(*, inbox: Inbox) -> PollResult:
    """Read the new mail of one inbox. A failure to reach the mailbox is kept on the inbox
    (`imap_error`, shown in the console) and logged, never with the password; nothing is
    lost, the next poll starts from the same place. A mail that cannot be understood is
    stored as best it can be, and never stops the mails after it."""
    result = PollResult()
    password = ""
    try:
        check_imap_settings(inbox)
        password = imap_password(inbox)
        with _connect(inbox, password) as connection:
            result.read = _read_new_mail(inbox, connection)
    except (MailboxError, ValidationError, OSError, imaplib.IMAP4.error) as error:
        result.error = _describe(error, inbox, password)
        logger.warning("inbox %s: IMAP poll of %s@%s failed: %s", inbox.pk, inbox.imap_username, inbox.imap_host, result.error)
    inbox.imap_polled_at, inbox.imap_error = timezone.now(), result.error
    Inbox.objects.filter(pk=inbox.pk).update(imap_polled_at=inbox.imap_polled_at, imap_error=result.error)
    return result


def _describe(error: Exception, inbox: Inbox, password: str) -> str:
    """A sentence for the console: what failed and where; the password is never in it."""
    if isinstance(error, ValidationError):
        text = " ".join(error.messages)
    elif isinstance(error, imaplib.IMAP4.error):
        detail = str(error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else error)
        text = _("The IMAP server refused: %(detail)s") % {"detail": detail}
    elif isinstance(error, (socket.timeout, TimeoutError)):
        text = _("No answer from %(host)s within %(seconds)s s.") % {"host": inbox.imap_host, "seconds": TIMEOUT}
    elif isinstance(error, ssl.SSLError):
        text = _("TLS with %(host)s failed: %(detail)s") % {"host": inbox.imap_host, "detail": error}
    elif isinstance(error, OSError):
        text = _("Cannot connect to %(host)s: %(detail)s") % {"host": inbox.imap_host, "detail": error.strerror or error}
    else:
        text = str(error)
    if password and len(password) >= 3:
        text = text.replace(password, "********")
    return _storable(text, 1000)


class _connect:
    """An authenticated IMAP connection (TLS as the inbox says), logged out on exit."""

    def __init__(self, inbox: Inbox, password: str):
        self.inbox, self.password = inbox, password

    def __enter__(self) -> imaplib.IMAP4:
        inbox = self.inbox
        context = ssl.create_default_context()
        if inbox.imap_security == Inbox.Security.SSL:
            self.connection = imaplib.IMAP4_SSL(inbox.imap_host, inbox.imap_port or 993, ssl_context=context, timeout=TIMEOUT)
        else:
            self.connection = imaplib.IMAP4(inbox.imap_host, inbox.imap_port or 143, timeout=TIMEOUT)
            if inbox.imap_security == Inbox.Security.STARTTLS:
                self.connection.starttls(context)
        try:
            self.connection.login(inbox.imap_username, self.password)
        except BaseException:
            self._close()
            raise
        return self.connection

    def __exit__(self, *exc) -> None:
        try:
            self.connection.logout()
        except (OSError, imaplib.IMAP4.error):
            self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown()


def _read_new_mail(inbox: Inbox, connection: imaplib.IMAP4) -> int:
    status, data = connection.select(_quoted(inbox.imap_folder))
    if status != "OK":
        raise MailboxError(_("The folder %(folder)s cannot be opened: %(detail)s") % {"folder": inbox.imap_folder, "detail": data})
    uidvalidity = int((connection.response("UIDVALIDITY")[1] or [b"0"])[0])
    if uidvalidity != inbox.imap_uidvalidity:  # a new folder, or the server renumbered it
        inbox.imap_uidvalidity, inbox.imap_last_uid = uidvalidity, 0
        Inbox.objects.filter(pk=inbox.pk).update(imap_uidvalidity=uidvalidity, imap_last_uid=0)
    status, data = connection.uid("SEARCH", None, f"UID {inbox.imap_last_uid + 1}:*")
    # "N:*" always matches the last mail, even below N: keep only the new ones.
    uids = sorted(uid for uid in (int(part) for part in (data[0] or b"").split()) if uid > inbox.imap_last_uid)
    read = 0
    for uid in uids[:MAX_PER_POLL]:
        status, data = connection.uid("FETCH", str(uid), f"(BODY.PEEK[]<0.{MAX_BYTES}>)")
        raw = next((part[1] for part in data if isinstance(part, tuple)), None)
        if status == "OK" and raw is not None:
            _ingest_safely(inbox, raw, uid)
            read += 1
        connection.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Seen)")
        # Only forward, and only past what this poll read: a concurrent poll never moves it back.
        Inbox.objects.filter(pk=inbox.pk, imap_uidvalidity=uidvalidity, imap_last_uid__lt=uid).update(imap_last_uid=uid)
        inbox.imap_last_uid = uid
    return read


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ingest_safely(inbox: Inbox, raw: bytes, uid: int) -> None:
    """`ingest_mail`, and when even that fails (a bug, a mail no parser survives), the mail
    is kept as a failed inbound message with the error: visible, and not blocking the rest."""
    try:
        ingest_mail(inbox=inbox, raw=raw)
    except Exception as error:
        logger.exception("inbox %s: mail UID %s could not be read", inbox.pk, uid)
        InboxMessage.objects.get_or_create(
            external_id=mail_key(inbox, raw, None),
            defaults={
                "inbox": inbox,
                "channel": "email",
                "from_address": "",
                "to_address": _storable(inbox.address, 254),
                "body": _storable(raw.decode("utf-8", errors="replace"), 100_000),
                "status": InboxMessage.Status.FAILED,
                "result": _storable(f"unreadable mail (UID {uid}): {error!r}"),
            },
        )


# --- one mail ------------------------------------------------------------------------------------
def mail_key(inbox: Inbox, raw: bytes, message_id: str | None) -> str:
    """The external id of a mail read from `inbox`: its Message-ID, or a hash of its bytes."""
    identity = message_id.strip() if message_id and message_id.strip() else "sha256:" + hashlib.sha256(raw).hexdigest()
    key = f"imap:{inbox.pk}:{identity}"
    if len(key) > 200 or key != _storable(key, 200):
        key = f"imap:{inbox.pk}:sha256:" + hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()
    return key


def ingest_mail(*, inbox: Inbox, raw: bytes) -> InboxMessage | None:
    """One mail, as the module docstring says. None when it was read before."""
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    key = mail_key(inbox, raw, _header(mail, "Message-ID"))
    sender = _address(mail, "From") or _address(mail, "Return-Path") or "unknown"
    fields = {"channel": "email", "from_address": sender, "to_address": _storable(inbox.address, 254), "external_id": key, "inbox": inbox}
    report_type = mail.get_param("report-type", "", header="Content-Type") if mail.get_content_type() == "multipart/report" else ""
    report_type = str(report_type).lower()
    if report_type == "delivery-status":
        return _record_report(fields, mail, *_bounce(mail))
    if report_type == "feedback-report":
        return _record_report(fields, mail, *_complaint(mail))
    if _is_auto_reply(mail):
        return receive_inbound(**fields, body=_text(mail), handled_as=_("automatic reply: not counted as a reply"))
    replied = named_message(_header(mail, "In-Reply-To"), _header(mail, "References"))
    return receive_inbound(**fields, body=_text(mail), in_reply_to=replied)


@transaction.atomic
def _record_report(fields: dict, mail: EmailMessage, kind: str | None, original: Message | None, detail: dict) -> InboxMessage | None:
    """Store the report as a handled inbound message and, when it calls for one, the event
    on the message it names, together: both exist, or neither (and a re-read adds neither)."""
    message = named_message(_header(original, "Message-ID")) if original is not None else None
    if kind is None:
        outcome = detail.pop("note")
    elif message is None:
        outcome = _("%(report)s for a message Mailroom did not send (or no longer has): nothing recorded") % {"report": detail["report"]}
    else:
        outcome = _("%(report)s recorded on message #%(id)s") % {"report": detail["report"], "id": message.pk}
    inbound, created = InboxMessage.objects.get_or_create(
        external_id=fields["external_id"],
        defaults={**fields, "body": _text(mail), "status": InboxMessage.Status.HANDLED, "result": outcome, "in_reply_to": message},
    )
    if created and kind is not None and message is not None:
        record_delivery_event(
            kind=kind, message=message, external_id=f"{fields['external_id']}:{kind}"[:200], payload={"inbound": inbound.pk, **detail}
        )
    return inbound if created else None


def _bounce(mail: EmailMessage) -> tuple[str | None, Message | None, dict]:
    """(BOUNCED or None, the original's headers, detail) of an RFC 3464 report. Only a
    permanent failure is a bounce: a delay, or a failure with a 4.x.x status, may yet go."""
    failed, other = [], []
    for part in mail.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in (part.get_payload() or [])[1:]:  # the first block is per message, then one per recipient
                if not isinstance(block, Message):
                    continue
                recipient = _storable(_header(block, "Final-Recipient").rpartition(";")[2].strip(), 254)
                action, status = _header(block, "Action").strip().lower(), _header(block, "Status").strip()
                entry = {"recipient": recipient, "action": _storable(action, 40), "status": _storable(status, 40)}
                (failed if action == "failed" and status.startswith("5") else other).append(entry)
    detail = {"report": _("bounce"), "recipients": failed or other}
    if failed:
        detail["diagnostic"] = _storable(_diagnostic(mail), 500)
        return DeliveryEvent.Kind.BOUNCED, _original(mail), detail
    detail["note"] = _("delivery report without a permanent failure (delayed or temporary): no bounce recorded")
    return None, _original(mail), detail


def _diagnostic(mail: EmailMessage) -> str:
    for part in mail.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in (part.get_payload() or [])[1:]:
                if isinstance(block, Message) and (code := _header(block, "Diagnostic-Code")):
                    return code
    return ""


def _complaint(mail: EmailMessage) -> tuple[str | None, Message | None, dict]:
    """(COMPLAINED or None, the original's headers, detail) of an RFC 5965 feedback report.
    Only Feedback-Type: abuse is a complaint (others: fraud, virus, not-spam… are kept)."""
    report = next((part for part in mail.walk() if part.get_content_type() == "message/feedback-report"), None)
    fields = report.get_payload(0) if report is not None and report.is_multipart() else None
    if fields is None and report is not None:  # a parser that left it as text
        fields = HeaderParser(policy=policy.default).parsestr(_content(report))
    feedback_type = _header(fields, "Feedback-Type").strip().lower() if fields is not None else ""
    detail = {"report": _("complaint"), "feedback_type": _storable(feedback_type, 40)}
    if feedback_type == "abuse":
        detail["user_agent"] = _storable(_header(fields, "User-Agent"), 200)
        return DeliveryEvent.Kind.COMPLAINED, _original(mail), detail
    detail["note"] = _("feedback report of type “%(type)s”: not a complaint, nothing recorded") % {"type": detail["feedback_type"]}
    return None, _original(mail), detail


def _original(mail: EmailMessage) -> Message | None:
    """The headers of the message a report is about: its message/rfc822 part, or its
    text/rfc822-headers part (what most reports carry)."""
    for part in mail.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global") and part.is_multipart():
            return part.get_payload(0)
        if content_type in ("text/rfc822-headers", "message/global-headers"):
            return HeaderParser(policy=policy.default).parsestr(_content(part))
    return None


def _is_auto_reply(mail: EmailMessage) -> bool:
    """RFC 3834's Auto-Submitted (anything but "no"), the headers vacation responders add,
    and the subjects out-of-office replies carry when they add none."""
    auto_submitted = _header(mail, "Auto-Submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if _header(mail, "X-Autoreply") or _header(mail, "X-Autorespond"):
        return True
    if _header(mail, "Precedence").strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(AUTO_REPLY_SUBJECT.match(_header(mail, "Subject")))


# --- reading hostile mail without crashing ------------------------------------------------------
def _header(mail: Message | None, name: str) -> str:
    """A header as text, or "" when absent or so broken the parser gives up on it."""
    if mail is None:
        return ""
    try:
        value = mail.get(name)
        return "" if value is None else _storable(str(value), 5000)
    except Exception:  # the email package's header parser has raised on hostile headers
        return ""


def _address(mail: EmailMessage, name: str) -> str:
    address = parseaddr(_header(mail, name))[1]
    return _storable(address.strip().lower(), 254)


def _content(part: Message) -> str:
    """A part's text, whatever its charset or transfer encoding claims."""
    try:
        content = part.get_content()
        return content if isinstance(content, str) else content.decode("utf-8", errors="replace")
    except Exception:
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload or "")


def _text(mail: EmailMessage) -> str:
    """The readable text of a mail: its plain part, else its HTML without tags."""
    try:
        body = mail.get_body(preferencelist=("plain", "html"))
    except Exception:
        body = None
    if body is None:
        text = "" if mail.is_multipart() else _content(mail)
    else:
        text = _content(body)
        if body.get_content_type() == "text/html":
            text = strip_tags(text)
    return _storable(text, 100_000)
