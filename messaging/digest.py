"""The weekly digest: what a contact who chose "weekly digest only" receives instead of
each marketing email.

The send-time gate (`messaging.delivery.sending.gate`) holds every marketing email (not on a
time-sensitive topic) for such a contact: the message ends `suppressed` with the error
`HELD`, a fixed value, so held messages are found set-based. An hourly schedule
(`send_weekly_digests`) sends each contact who has held messages one digest at their local
Monday 09:xx (`Contact.timezone`) listing them (subject, preheader, view-in-browser link),
and marks them `in digest #<id>`. They stay `suppressed`: the mail itself never left, so
reports never count it as sent; the digest is a message of its own, counted as one.
Idempotent: the digest's dedup key is `digest:<contact>:<ISO week>`, and a marked message
is no longer held."""

import logging
import re
from datetime import datetime
from html import unescape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone, translation
from django.utils.html import escape, format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from messaging.delivery.outbox import enqueue_message, render_deferred
from messaging.delivery.tracking import public_link
from messaging.models import Channel, Contact, OutboxMessage, Subscription

logger = logging.getLogger(__name__)

HELD = "held for the weekly digest"  # OutboxMessage.error of a held message (status suppressed)
IN_DIGEST_PREFIX = "in weekly digest #"
DIGEST_KEY = "weekly_digest"  # metadata of the digest itself: the gate never holds it
SEND_WEEKDAY, SEND_HOUR = 0, 9  # Monday 09:xx, the contact's local time
VIEW = "__MAILROOM_VIEW__"
_PREHEADER = re.compile(r'<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">(.*?)</div>', re.S)


def in_digest(digest_pk: int) -> str:
    return f"{IN_DIGEST_PREFIX}{digest_pk}"


def is_held_or_in_digest(message: OutboxMessage) -> bool:
    """A message the contact reads through the digest: its view-in-browser page works."""
    return message.status == OutboxMessage.Status.SUPPRESSED and (message.error == HELD or message.error.startswith(IN_DIGEST_PREFIX))


def _zone(name: str):
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def is_digest_time(contact: Contact, now: datetime) -> bool:
    local = now.astimezone(_zone(contact.timezone))
    return local.weekday() == SEND_WEEKDAY and local.hour == SEND_HOUR


def week_key(contact: Contact, now: datetime) -> str:
    year, week, _day = now.astimezone(_zone(contact.timezone)).isocalendar()
    return f"digest:{contact.pk}:{year}-W{week:02d}"


def held_messages():
    return OutboxMessage.objects.filter(channel=Channel.EMAIL, status=OutboxMessage.Status.SUPPRESSED, error=HELD)


def preheader_of(message: OutboxMessage) -> str:
    found = _PREHEADER.search(message.body_html or "")
    return unescape(found.group(1)).strip() if found else ""


def send_weekly_digests(*, now: datetime | None = None) -> int:
    """Queue the digest of every contact whose local time is Monday 09:xx and who has held
    messages. Returns how many digests were queued."""
    now = now or timezone.now()
    contact_ids = set(held_messages().values_list("contact_id", flat=True).distinct())
    sent = 0
    for contact in Contact.objects.filter(pk__in=contact_ids, erased_at__isnull=True, deleted_at__isnull=True).exclude(email=""):
        if not is_digest_time(contact, now):
            continue
        try:
            digest = send_digest(contact, now=now)
        except Exception:  # one contact's odd data must not stop everyone else's digest
            logger.exception("weekly digest for contact %s failed", contact.pk)
            continue
        sent += digest is not None and not getattr(digest, "deduplicated", False)
    return sent


def send_digest(contact: Contact, *, now: datetime) -> OutboxMessage | None:
    with transaction.atomic():
        held = list(
            held_messages()
            .filter(contact=contact)
            .select_for_update(of=("self",))
            .select_related("topic")
            .order_by("created_at", "pk")
            .with_bodies()
        )
        if not held:
            return None
        held, _broken = render_deferred(held)  # a campaign's message held before its body was rendered
        consented = set(
            Subscription.objects.filter(
                contact=contact, channel=Channel.EMAIL, status=Subscription.Status.SUBSCRIBED, topic_id__in={m.topic_id for m in held}
            ).values_list("topic_id", flat=True)
        )
        listed = [m for m in held if m.topic_id in consented]
        withdrawn = [m.pk for m in held if m.topic_id not in consented]
        if withdrawn:
            held_messages().filter(pk__in=withdrawn).update(error="no consent for this topic on this channel")
        if not listed:
            return None
        with translation.override(contact.locale or None):
            subject, text, html = _compose(listed)
        digest = enqueue_message(
            channel=Channel.EMAIL,
            contact=contact,
            topic=listed[-1].topic,  # a marketing topic the contact consents to: footer and unsubscribe as any marketing mail
            # Held subjects are rendered output (a contact's own name may be in them): passed as
            # values, never parsed as a template again.
            subject="{{ digest_subject }}",
            text="{{ digest_text }}",
            html=html.replace("{", "&#123;").replace("}", "&#125;"),
            context={"digest_subject": subject, "digest_text": text},
            priority=OutboxMessage.Priority.BULK,
            dedup_key=week_key(contact, now),
            metadata={DIGEST_KEY: [m.pk for m in listed], "purpose": "weekly digest"},
        )
        held_messages().filter(pk__in=[m.pk for m in listed]).update(error=in_digest(digest.pk))
    return digest


def _compose(messages: list[OutboxMessage]) -> tuple[str, str, str]:
    count = len(messages)
    subject = ngettext("Your weekly digest: %(count)s message", "Your weekly digest: %(count)s messages", count) % {"count": count}
    intro = _("Here is what we sent you this week.")
    read = _("Read it in your browser")
    entries = [(m.subject or _("(no subject)"), preheader_of(m), public_link(m.pk, VIEW)) for m in messages]
    text = intro + "\n\n" + "\n\n".join(f"{s}\n{p + chr(10) if p else ''}{read}: {url}" for s, p, url in entries) + "\n"
    items = format_html_join(
        "",
        '<li><p><strong>{}</strong></p>{}<p><a href="{}">{}</a></p></li>',
        ((s, format_html("<p>{}</p>", p) if p else "", url, read) for s, p, url in entries),
    )
    html = format_html("<html><body><p>{}</p><ul>{}</ul></body></html>", escape(intro), items)
    return subject, text, str(html)
