"""Read-side queries for the messaging app."""

import datetime

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from messaging.models import Channel, ConsentRecord, Contact, Subscription, Suppression, Topic


def has_consent(*, contact: Contact, topic: Topic, channel: str = Channel.EMAIL) -> bool:
    """Marketing may go out only with an explicit, current subscription."""
    if topic.kind == Topic.Kind.TRANSACTIONAL:
        return True
    return Subscription.objects.filter(contact=contact, topic=topic, channel=channel, status=Subscription.Status.SUBSCRIBED).exists()


def is_suppressed(*, address: str, channel: str) -> bool:
    return Suppression.objects.filter(address=address, channel=channel).exists()


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
