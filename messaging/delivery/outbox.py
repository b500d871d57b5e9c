"""Outbox actions: put a message in the queue, cancel it, retry it.

The outbox table is the queue. `enqueue_message` validates everything it can up front
(channel, address, SMS length, template variables, the marketing rules) so a bad message
is refused with a clear error instead of failing later in a worker.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from messaging import site
from messaging.attachments import NewAttachment, check_attachments, store_attachments
from messaging.audit import record_audit
from messaging.consent import normalise_address
from messaging.content.merge_tags import contact_context
from messaging.content.rendering import engine, mentions, render_parts, render_strict, render_version
from messaging.content.versions import pick_template
from messaging.delivery.tracking import track_html
from messaging.delivery.work import after_commit
from messaging.errors import InvalidInput, NotAllowed
from messaging.metadata import (
    DEFERRED_RENDER,
    WHATSAPP_TEMPLATE_KEY,
)
from messaging.models import Channel, Contact, OutboxBody, OutboxMessage, Template, TemplateVersion, Topic
from messaging.secrets import check_secrets, check_stored, seal, with_markers
from messaging.senders import clean_sender
from messaging.whatsapp import approved_template, provider_requires_template, required_template_error

logger = logging.getLogger(__name__)

MAX_SMS_LENGTH = 1600  # ten concatenated segments; providers refuse longer


def address_of(contact: Contact, channel: str) -> str | None:
    if channel == Channel.EMAIL:
        return contact.email
    if channel in (Channel.SMS, Channel.WHATSAPP):
        return contact.phone
    return contact.push_tokens[0] if contact.push_tokens else None


def context_dedup_key(*, namespace: str, channel: str, to: str, context: dict[str, Any]) -> str:
    """namespace + hash of what makes the message unique (seed 000's rule)."""
    digest = hashlib.sha256(json.dumps([channel, to, context], sort_keys=True, default=str).encode()).hexdigest()[:40]
    return f"{namespace}:{digest}"


PREHEADER = '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">{}</div>'


def with_preheader(html: str, preheader: str) -> str:
    """The inbox preview line: hidden text right after <body>."""
    if not (html and preheader):
        return html
    hidden = PREHEADER.format(escape(preheader))
    start = html.find("<body")
    if start == -1:
        return hidden + html
    end = html.find(">", start) + 1
    return html[:end] + hidden + html[end:]


def stored_html(html: str, *, metadata: dict[str, Any], preheader: str = "", track_links: bool = True) -> str:
    """A rendered email's HTML as the outbox stores it: the preheader, then (when tracked)
    every http(s) link rewritten to a click URL, the open pixel, and the link ids recorded
    in `metadata["links"]` (the only targets its clicks may reach). A link carrying a
    sealed secret is never rewritten (messaging.delivery.tracking). `enqueue_message` and the
    fan-out's `render_deferred` both store this, so the two paths cannot drift."""
    html = with_preheader(html, preheader)
    if html and track_links:  # clicks and opens
        html, link_ids = track_html(html)
        if link_ids:
            metadata["links"] = link_ids
    return html


def _active_version(template: Template, contact: Contact | None) -> TemplateVersion:
    """The contact's language variant of the template, else the template given."""
    chosen = pick_template(key=template.key, locale=contact.locale if contact else None) or template
    if not chosen.is_active or chosen.active_version_id is None:
        raise InvalidInput(
            _("The template “%(name)s” has no active version.") % {"name": chosen.name}, fields={"template": [_("Not active.")]}
        )
    return chosen.active_version


def enqueue_message(
    *,
    channel: str,
    contact: Contact | None = None,
    to: str | None = None,
    subject: str = "",
    text: str = "",
    html: str = "",
    context: dict[str, Any] | None = None,
    topic: Topic | None = None,
    priority: int = OutboxMessage.Priority.NORMAL,
    scheduled_at: datetime | None = None,
    dedup_key: str | None = None,
    dedup_namespace: str | None = None,
    from_address: str = "",
    metadata: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    max_attempts: int | None = None,
    track_links: bool = True,
    template: Template | None = None,
    template_version: TemplateVersion | None = None,
    secrets: dict[str, str] | None = None,
    attachments: list[NewAttachment] | None = None,
    verbatim: bool = False,
) -> OutboxMessage:
    """Queue one message. Returns the existing message when the dedup key was seen before
    (its `deduplicated` is then True, so the API can answer 200 instead of 201).

    `secrets` (e.g. {"url": reset_link} or {"gift_card.code": code}) makes the message
    sensitive: each secret is in the render context as its marker (`{{ url }}`, or
    `messaging.secrets.marker("url")` in a text composed beforehand), the stored body holds
    only markers, the values are sealed in the row and filled in on the wire at send time,
    and no page shows the body to anyone (see messaging.secrets).

    `attachments` (email only): files and inline images, checked (size, type, content)
    before anything is written, stored with the message (messaging.attachments).
    `verbatim`: the subject and bodies are final, not templates (the Django email backend)."""
    if channel not in Channel.values:
        raise InvalidInput(_("Unknown channel “%(channel)s”.") % {"channel": channel}, fields={"channel": [_("Unknown channel.")]})
    if priority not in OutboxMessage.Priority.values:  # the claim looks each priority up by name
        raise InvalidInput(_("Unknown priority “%(priority)s”.") % {"priority": priority}, fields={"priority": [_("Unknown priority.")]})
    raw_address = to if to else (address_of(contact, channel) if contact else None)
    if not raw_address:
        raise InvalidInput(
            _("No %(channel)s address: give `to` or a contact that has one.") % {"channel": Channel(channel).label},
            fields={"to": [_("This field is required.")]},
        )
    address = normalise_address(raw_address, channel)
    from_address = clean_sender(from_address)  # never a header injection (CR/LF), whoever calls
    context = dict(context or {})
    metadata = dict(metadata or {})
    preheader = ""
    if secrets:
        secrets = check_secrets(secrets)
        context = with_markers(context, secrets)
    approved = None  # the approved WhatsApp template the message goes out as (messaging.whatsapp)
    if template is not None or template_version is not None:
        version = template_version or _active_version(template, contact)
        wa_template = version.template if channel == Channel.WHATSAPP else None
        extra = "\n".join(wa_template.whatsapp_variables or []) if wa_template else ""
        full_context = contact_context(contact, uses=mentions(version, extra=extra)) | context
        rendered = render_version(version, full_context)
        approved = approved_template(wa_template, full_context)
        subject, html, preheader = rendered.subject, rendered.html if channel == Channel.EMAIL else "", rendered.preheader
        text = rendered.sms if channel != Channel.EMAIL and rendered.sms else rendered.text
        topic = topic or version.template.topic
        metadata["template_version"] = version.pk
        if rendered.missing:  # rendered with the default; never a crash at send time
            metadata["missing_variables"] = rendered.missing
    elif not verbatim:
        if contact is not None:
            context.setdefault("contact", {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email or ""})
        subject = render_strict(subject, context, part="subject")
        text = render_strict(text, context, part="text")
        html = render_strict(html, context, html=True, part="HTML")
    if channel == Channel.WHATSAPP:
        if approved:
            metadata[WHATSAPP_TEMPLATE_KEY] = approved
        elif provider_requires_template():
            raise required_template_error(template or (template_version.template if template_version else None))
    if not (text or html):
        raise InvalidInput(_("A message needs a body."), fields={"text": [_("This field is required.")]})
    if channel in (Channel.SMS, Channel.WHATSAPP) and len(text) > MAX_SMS_LENGTH:
        raise InvalidInput(
            _("This message is %(n)s characters long; the limit is %(max)s.") % {"n": len(text), "max": MAX_SMS_LENGTH},
            fields={"text": [_("Too long.")]},
        )
    if attachments:
        if channel != Channel.EMAIL:
            raise InvalidInput(_("Only an email can carry attachments."), fields={"attachments": [_("Email only.")]})
        attachments = check_attachments(attachments)
    if channel == Channel.EMAIL:
        html = stored_html(html, metadata=metadata, preheader=preheader, track_links=track_links)
    # A console test send goes to a colleague's address, not to a contact: it is not
    # marketing mail (no consent to ask, nothing to unsubscribe from), whatever the topic.
    is_marketing = topic is not None and topic.kind == Topic.Kind.MARKETING and not metadata.get("test_send")
    if is_marketing and channel == Channel.EMAIL and not site.current().postal_address:
        raise NotAllowed(site.postal_address_missing())
    if dedup_key is None and dedup_namespace:
        dedup_key = context_dedup_key(namespace=dedup_namespace, channel=channel, to=address, context=context)
    if secrets:
        check_stored(
            secrets,
            subject=subject,
            parts=[text, html],
            text=text,
            html=html,
            context={"metadata": metadata, "headers": headers, "key": dedup_key},
        )
    now = timezone.now()
    message = OutboxMessage(
        is_sensitive=bool(secrets),
        sealed_secrets=seal(secrets) if secrets else "",
        channel=channel,
        contact=contact,
        to_address=address,
        from_address=from_address,
        topic=topic,
        is_marketing=is_marketing,
        subject=subject,
        body_text=text,
        body_html=html,
        headers=headers or {},
        metadata=metadata,
        priority=priority,
        scheduled_at=scheduled_at,
        next_attempt_at=max(scheduled_at, now) if scheduled_at else now,
        dedup_key=dedup_key,
        max_attempts=max_attempts or settings.MAILROOM_MAX_ATTEMPTS,
        has_attachments=bool(attachments),
    )
    try:
        with transaction.atomic():
            message.save()
            if attachments:
                store_attachments(message, attachments)
    except IntegrityError:
        existing = OutboxMessage.objects.filter(dedup_key=dedup_key).first() if dedup_key else None
        if existing is None:
            raise
        existing.deduplicated = True
        return existing
    if message.next_attempt_at <= now:
        after_commit("messaging.tasks.drain_outbox", channel=channel)
    return message


BULK_MAX_RECIPIENTS = 1000  # beyond that, a campaign (segments, approval, set-based fan-out)


@dataclass
class BulkResult:
    queued: int = 0
    deduplicated: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # recipient → why it got nothing


def enqueue_bulk(*, channel: str, recipients: list[Contact | str], key: str, **message: Any) -> BulkResult:
    """The same message to each recipient, a contact or an address (seed 001's BulkNotifier,
    seed 002's send_bulk_email). A recipient who cannot get it (no address, an invalid
    number…) is skipped with the reason and the others are queued. Each message's dedup key
    is `bulk:<key>:<recipient>`, so calling again with the same key queues nothing twice."""
    key = (key or "").strip()
    if not key or len(key) > 100:
        raise InvalidInput(_("A bulk send needs a key of at most 100 characters."), fields={"key": [_("This field is required.")]})
    if not recipients or len(recipients) > BULK_MAX_RECIPIENTS:
        raise InvalidInput(
            _("Give between 1 and %(n)s recipients (a campaign sends to more).") % {"n": BULK_MAX_RECIPIENTS},
            fields={"recipients": [_("Between 1 and %(n)s.") % {"n": BULK_MAX_RECIPIENTS}]},
        )
    result = BulkResult()
    for recipient in recipients:
        name = f"contact:{recipient.pk}" if isinstance(recipient, Contact) else str(recipient)
        try:
            target = _bulk_target(recipient, channel)
            with transaction.atomic():  # one recipient's failure leaves the others' messages alone
                sent = enqueue_message(channel=channel, dedup_key=f"bulk:{key}:{target['to']}"[:200], **target, **message)
        except (InvalidInput, NotAllowed) as error:
            result.skipped[name] = str(error)
            continue
        if sent.deduplicated:
            result.deduplicated += 1
        else:
            result.queued += 1
    return result


def _bulk_target(recipient: Contact | str, channel: str) -> dict[str, Any]:
    """The normalised address (one message per address, however it was given) and the
    contact who has it: consent and preferences are theirs."""
    if isinstance(recipient, Contact):
        address = address_of(recipient, channel)
        if not address:
            raise InvalidInput(_("No %(channel)s address.") % {"channel": Channel(channel).label})
        return {"to": normalise_address(address, channel), "contact": recipient}
    normalised = normalise_address(recipient, channel)  # InvalidInput names what is wrong
    field_name = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.WHATSAPP: "phone"}.get(channel)
    contact = Contact.objects.active().filter(**{field_name: normalised}).first() if field_name else None
    return {"to": normalised, "contact": contact}


@transaction.atomic
def cancel_message(*, actor: AbstractBaseUser | None, message: OutboxMessage, reason: str = "") -> OutboxMessage:
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if message.status != OutboxMessage.Status.QUEUED:
        raise NotAllowed(_("Only a queued message can be cancelled (this one is %(status)s).") % {"status": message.get_status_display()})
    message.status = OutboxMessage.Status.CANCELLED
    message.error = reason or _("Cancelled")
    message.sealed_secrets = ""  # a cancelled message's secret is never needed again
    message.save(update_fields=["status", "error", "sealed_secrets"])
    record_audit(actor=actor, verb="cancelled", target=message, changes={"status": {"before": "queued", "after": "cancelled"}})
    return message


@transaction.atomic
def retry_message(*, actor: AbstractBaseUser | None, message: OutboxMessage) -> OutboxMessage:
    """Put a failed or cancelled message back in the queue now, with a fresh set of attempts."""
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if message.status not in (OutboxMessage.Status.FAILED, OutboxMessage.Status.CANCELLED):
        raise NotAllowed(
            _("Only a failed or cancelled message can be retried (this one is %(status)s).") % {"status": message.get_status_display()}
        )
    if message.is_sensitive and not message.sealed_secrets:
        raise NotAllowed(
            _("This message carried a secret link or code that was discarded when it ended: ask for a new one instead of retrying it.")
        )
    if message.body_pruned_at is not None:
        raise NotAllowed(_("This message's content was deleted under the retention policy: it cannot be sent again."))
    before = message.status
    message.status, message.attempts, message.error = OutboxMessage.Status.QUEUED, 0, ""
    message.next_attempt_at, message.lease_until = timezone.now(), None
    message.save(update_fields=["status", "attempts", "error", "next_attempt_at", "lease_until"])
    record_audit(actor=actor, verb="requeued", target=message, changes={"status": {"before": before, "after": "queued"}})
    after_commit("messaging.tasks.drain_outbox", channel=message.channel)
    return message


@transaction.atomic
def requeue_failed(
    *, actor: AbstractBaseUser | None, queryset: QuerySet | None = None, max_age_hours: float | None = None, channel: str | None = None
) -> int:
    """Put failed messages back in the queue in one statement; returns how many."""
    failed = (queryset if queryset is not None else OutboxMessage.objects.all()).filter(status=OutboxMessage.Status.FAILED)
    failed = failed.exclude(is_sensitive=True, sealed_secrets="")  # their secret is gone: a new link is asked for instead
    failed = failed.filter(body_pruned_at__isnull=True)  # their content is gone (retention)
    if max_age_hours is not None:
        failed = failed.filter(created_at__gte=timezone.now() - timedelta(hours=max_age_hours))
    if channel:
        failed = failed.filter(channel=channel)
    count = failed.update(status=OutboxMessage.Status.QUEUED, attempts=0, error="", next_attempt_at=timezone.now(), lease_until=None)
    if count:
        record_audit(
            actor=actor, verb="requeued", target_type="messaging.outboxmessage", changes={"count": {"before": None, "after": count}}
        )
        after_commit("messaging.tasks.drain_outbox")
    return count


# --- deferred rendering ------------------------------------------------------------------
@lru_cache(maxsize=64)
def _parsed_subject(source: str):
    return {"subject": engine(html=False).from_string(source)}


def render_deferred(messages: list[OutboxMessage]) -> tuple[list[OutboxMessage], list[tuple[OutboxMessage, str]]]:
    """Render the messages queued with `metadata["render"] = {"version": id, "subject": ""}`
    (optionally with "context", and "track_links": false for no click or open tracking; bulk
    fan-outs insert rows set-based, without per-recipient Python work; the merge runs
    here, in the worker that sends them, spread over every worker). The body is stored as
    `enqueue_message` stores it (`stored_html`: preheader, tracked links, open pixel, link
    ids). The rendered content is
    written back in one statement, so view-in-browser and retries see what was sent, and the
    render key is dropped so a retry never renders twice. Returns (ready, [(message, error)])."""
    pending = [m for m in messages if isinstance(m.metadata, dict) and DEFERRED_RENDER in m.metadata]
    if not pending:
        return messages, []
    versions = TemplateVersion.objects.select_related("template").in_bulk({m.metadata[DEFERRED_RENDER].get("version") for m in pending})
    contacts = Contact.objects.in_bulk({m.contact_id for m in pending if m.contact_id})
    broken: list[tuple[OutboxMessage, str]] = []
    rendered_ok: list[OutboxMessage] = []
    for message in pending:
        spec = message.metadata.pop(DEFERRED_RENDER)
        version = versions.get(spec.get("version"))
        contact = contacts.get(message.contact_id)
        if version is None:
            broken.append((message, "the pinned template version no longer exists"))
            continue
        try:
            wa_template = version.template if message.channel == Channel.WHATSAPP else None
            variables = "\n".join(wa_template.whatsapp_variables or []) if wa_template else ""
            uses = mentions(version, extra=(spec.get("subject") or "") + "\n" + variables)
            context = contact_context(contact, uses=uses) | (spec.get("context") or {})
            rendered = render_version(version, context)
            if approved := approved_template(wa_template, context):
                message.metadata[WHATSAPP_TEMPLATE_KEY] = approved
            subject = rendered.subject
            if spec.get("subject"):
                subject = render_parts(_parsed_subject(spec["subject"]), context).subject
        except InvalidInput as error:  # e.g. too much work for the render budget: clear, and not a bug
            logger.warning("message %s: deferred render refused: %s", message.pk, error)
            broken.append((message, f"render failed: {error}"))
            continue
        except Exception as error:  # a template that cannot render must not lose the batch
            logger.exception("message %s: deferred render failed", message.pk)
            broken.append((message, f"render failed: {error!r}"))
            continue
        if message.channel == Channel.EMAIL:
            message.subject = subject[:998]
            track_links = spec.get("track_links", True)
            message.body_html = stored_html(rendered.html, metadata=message.metadata, preheader=rendered.preheader, track_links=track_links)
            message.body_text = rendered.text
        else:
            message.body_text, message.body_html = (rendered.sms or rendered.text), ""
        message.metadata["template_version"] = version.pk
        if rendered.missing:
            message.metadata["missing_variables"] = rendered.missing
        if not (message.body_text or message.body_html):
            broken.append((message, "the pinned template version renders an empty body"))
            continue
        rendered_ok.append(message)
    _write_rendered(rendered_ok)
    failed = {m.pk for m, _error in broken}
    return [m for m in messages if m.pk not in failed], broken


def _write_rendered(messages: list[OutboxMessage]) -> None:
    if not messages:
        return
    from django.db import connection

    table, bodies = OutboxMessage._meta.db_table, OutboxBody._meta.db_table
    json_param = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET subject = %s, metadata = {json_param} WHERE id = %s",
            [(m.subject, json.dumps(m.metadata), m.pk) for m in messages],
        )
        # A retried message rendered again (its first try failed before the row was written
        # back) replaces its body rather than failing on the key.
        cursor.executemany(
            f"INSERT INTO {bodies} (message_id, text, html) VALUES (%s, %s, %s) "
            "ON CONFLICT (message_id) DO UPDATE SET text = excluded.text, html = excluded.html",
            [(m.pk, m.body_text, m.body_html) for m in messages],
        )
