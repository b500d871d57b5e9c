"""Outbox actions: put a message in the queue, cancel it, retry it.

The outbox table is the queue. `enqueue_message` validates everything it can up front
(channel, address, SMS length, template variables, the marketing rules) so a bad message
is refused with a clear error instead of failing later in a worker.
"""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _

from messaging.audit import record_audit
from messaging.consent import normalise_address
from messaging.content.merge_tags import contact_context
from messaging.content.rendering import render_strict, render_version
from messaging.content.versions import pick_template
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import Channel, Contact, OutboxMessage, Template, TemplateVersion, Topic
from messaging.tracking import rewrite_links
from messaging.work import after_commit

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
) -> OutboxMessage:
    """Queue one message. Returns the existing message when the dedup key was seen before."""
    if channel not in Channel.values:
        raise InvalidInput(_("Unknown channel “%(channel)s”.") % {"channel": channel}, fields={"channel": [_("Unknown channel.")]})
    raw_address = to if to else (address_of(contact, channel) if contact else None)
    if not raw_address:
        raise InvalidInput(
            _("No %(channel)s address: give `to` or a contact that has one.") % {"channel": Channel(channel).label},
            fields={"to": [_("This field is required.")]},
        )
    address = normalise_address(raw_address, channel)
    context = dict(context or {})
    metadata = dict(metadata or {})
    if template is not None or template_version is not None:
        version = template_version or _active_version(template, contact)
        rendered = render_version(version, contact_context(contact) | context)
        subject, html = rendered.subject, with_preheader(rendered.html, rendered.preheader) if channel == Channel.EMAIL else ""
        text = rendered.sms if channel != Channel.EMAIL and rendered.sms else rendered.text
        topic = topic or version.template.topic
        metadata["template_version"] = version.pk
        if rendered.missing:  # rendered with the default; never a crash at send time
            metadata["missing_variables"] = rendered.missing
    else:
        if contact is not None:
            context.setdefault("contact", {"first_name": contact.first_name, "last_name": contact.last_name, "email": contact.email or ""})
        subject = render_strict(subject, context, part="subject")
        text = render_strict(text, context, part="text")
        html = render_strict(html, context, html=True, part="HTML")
    if not (text or html):
        raise InvalidInput(_("A message needs a body."), fields={"text": [_("This field is required.")]})
    if channel in (Channel.SMS, Channel.WHATSAPP) and len(text) > MAX_SMS_LENGTH:
        raise InvalidInput(
            _("This message is %(n)s characters long; the limit is %(max)s.") % {"n": len(text), "max": MAX_SMS_LENGTH},
            fields={"text": [_("Too long.")]},
        )
    if html and track_links and channel == Channel.EMAIL:
        html = rewrite_links(html)
    is_marketing = topic is not None and topic.kind == Topic.Kind.MARKETING
    if is_marketing and channel == Channel.EMAIL and not settings.MAILROOM_SENDER_ADDRESS:
        raise NotAllowed(_("Marketing email needs the sender's postal address: set MAILROOM_SENDER_ADDRESS."))
    if dedup_key is None and dedup_namespace:
        dedup_key = context_dedup_key(namespace=dedup_namespace, channel=channel, to=address, context=context)
    now = timezone.now()
    message = OutboxMessage(
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
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        existing = OutboxMessage.objects.filter(dedup_key=dedup_key).first() if dedup_key else None
        if existing is None:
            raise
        return existing
    if message.next_attempt_at <= now:
        after_commit("messaging.tasks.drain_outbox", channel=channel)
    return message


@transaction.atomic
def cancel_message(*, actor: AbstractBaseUser | None, message: OutboxMessage, reason: str = "") -> OutboxMessage:
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if message.status != OutboxMessage.Status.QUEUED:
        raise NotAllowed(_("Only a queued message can be cancelled (this one is %(status)s).") % {"status": message.get_status_display()})
    message.status = OutboxMessage.Status.CANCELLED
    message.error = reason or _("Cancelled")
    message.save(update_fields=["status", "error"])
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
