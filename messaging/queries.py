"""Read-side queries for the messaging app."""

import datetime

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from messaging.models import (
    Channel,
    ConsentRecord,
    Contact,
    DeliveryEvent,
    OutboxMessage,
    Subscription,
    Suppression,
    Topic,
    WebhookEndpoint,
)


def has_consent(*, contact: Contact, topic: Topic, channel: str = Channel.EMAIL) -> bool:
    """Marketing may go out only with an explicit, current subscription."""
    if topic.kind == Topic.Kind.TRANSACTIONAL:
        return True
    return Subscription.objects.filter(contact=contact, topic=topic, channel=channel, status=Subscription.Status.SUBSCRIBED).exists()


def is_suppressed(*, address: str, channel: str) -> bool:
    return Suppression.objects.filter(address__in=Suppression.keys_for([address]), channel=channel).exists()


def start_of_today() -> datetime.datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def audience_figures() -> dict[str, int]:
    today = start_of_today()
    return {
        "contacts": Contact.objects.active().count(),
        "contacts_today": Contact.objects.filter(created_at__gte=today).count(),
        "subscriptions": Subscription.objects.filter(status=Subscription.Status.SUBSCRIBED).count(),
        "consents_today": ConsentRecord.objects.filter(created_at__gte=today).count(),
        "withdrawals_today": ConsentRecord.objects.filter(created_at__gte=today, action=ConsentRecord.Action.WITHDRAWN).count(),
        "suppressions": Suppression.objects.count(),
    }


def consents_per_day(*, days: int = 14) -> QuerySet:
    since = start_of_today() - datetime.timedelta(days=days - 1)
    return (
        ConsentRecord.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "action")
        .annotate(total=Count("id"))
        .order_by("day")
    )


def subscribers_per_topic() -> QuerySet:
    return (
        Topic.objects.filter(subscriptions__status=Subscription.Status.SUBSCRIBED)
        .annotate(total=Count("subscriptions"))
        .order_by("position", "name")
    )


def message_stats(*, since: datetime.datetime | None = None, until: datetime.datetime | None = None, channel: str | None = None) -> dict:
    """Outbox totals by status and by channel (messages created in [since, until)), and the
    delivery events (delivered, opened, bounced…) that occurred in the same window."""
    messages = OutboxMessage.objects.all()
    events = DeliveryEvent.objects.all()
    if since:
        messages, events = messages.filter(created_at__gte=since), events.filter(occurred_at__gte=since)
    if until:
        messages, events = messages.filter(created_at__lt=until), events.filter(occurred_at__lt=until)
    if channel:
        messages, events = messages.filter(channel=channel), events.filter(message__channel=channel)
    by_status = dict.fromkeys(OutboxMessage.Status.values, 0)
    by_channel: dict[str, dict] = {}
    for row in messages.values("channel", "status").annotate(total=Count("id")).order_by():
        by_status[row["status"]] += row["total"]
        per_channel = by_channel.setdefault(row["channel"], {"total": 0, "by_status": dict.fromkeys(OutboxMessage.Status.values, 0)})
        per_channel["total"] += row["total"]
        per_channel["by_status"][row["status"]] += row["total"]
    event_totals = dict.fromkeys(DeliveryEvent.Kind.values, 0)
    for row in events.values("kind").annotate(total=Count("id")).order_by():
        event_totals[row["kind"]] = row["total"]
    return {
        "since": since,
        "until": until,
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_channel": by_channel,
        "events": event_totals,
    }


def webhook_endpoints_turned_off() -> QuerySet[WebhookEndpoint]:
    """Endpoints disabled after consecutive failures (not those a person switched off)."""
    return WebhookEndpoint.objects.filter(is_active=False, disabled_at__isnull=False)
