"""Conversions: an order is attributed to the campaign whose tracked link the contact
clicked last before ordering, when the order came within that campaign's window
(`attribution_days`, 5 by default). Last touch, one campaign per order."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from marketing.models import Campaign, CampaignConversion, Order
from marketing.webhook_events import ORDER_ATTRIBUTED
from messaging.models import DeliveryEvent
from messaging.webhooks.emit import emit

LOOKBACK_DAYS = 60


def attribute_conversions(*, since=None) -> int:
    """Attribute the paid orders of the last `LOOKBACK_DAYS` that have no conversion yet.
    Idempotent (one conversion per order). Returns how many were created."""
    since = since or timezone.now() - timedelta(days=LOOKBACK_DAYS)
    orders = list(
        Order.objects.filter(status__in=Order.REVENUE_STATUSES, placed_at__gte=since, campaign_conversion__isnull=True).order_by(
            "placed_at"
        )
    )
    if not orders:
        return 0
    longest = Campaign.objects.aggregate(n=Max("attribution_days"))["n"] or 5
    clicks = (
        DeliveryEvent.objects.filter(
            kind=DeliveryEvent.Kind.CLICKED,
            message__contact_id__in={o.contact_id for o in orders},
            message__campaign_recipient__isnull=False,
            occurred_at__gte=orders[0].placed_at - timedelta(days=longest),
        )
        .values_list(
            "message__contact_id",
            "occurred_at",
            "message__campaign_recipient__campaign_id",
            "message__campaign_recipient__campaign__attribution_days",
            "message__campaign_recipient__variant_id",
        )
        .order_by("occurred_at")
    )
    by_contact: dict[int, list[tuple]] = {}
    for contact_id, *rest in clicks:
        by_contact.setdefault(contact_id, []).append(tuple(rest))
    created = 0
    for order in orders:
        before = [c for c in by_contact.get(order.contact_id, []) if c[0] <= order.placed_at]
        if not before:
            continue
        clicked_at, campaign_id, days, variant_id = before[-1]  # last touch
        if order.placed_at - clicked_at > timedelta(days=days):
            continue
        try:
            with transaction.atomic():
                conversion = CampaignConversion.objects.create(
                    campaign_id=campaign_id,
                    contact_id=order.contact_id,
                    variant_id=variant_id,
                    order=order,
                    revenue=order.amount,
                    currency=order.currency,
                    clicked_at=clicked_at,
                )
            created += 1
        except IntegrityError:  # attributed by a concurrent run
            continue
        emit(
            ORDER_ATTRIBUTED,
            {
                "order_id": order.pk,
                "campaign_id": campaign_id,
                "contact_id": order.contact_id,
                "revenue": str(conversion.revenue),
                "currency": conversion.currency,
            },
        )
    return created
