"""Delivery events a test's webhooks recorded, apart from the sandbox's own."""

from django.db.models import QuerySet

from messaging.models import DeliveryEvent
from messaging.providers.sandbox import DELIVERED_ID_PREFIX


def webhook_events() -> QuerySet[DeliveryEvent]:
    """Events the webhooks recorded: the sandbox that 'sent' a test message records its own
    delivered event too, as a real provider's webhook would."""
    return DeliveryEvent.objects.exclude(external_id__startswith=DELIVERED_ID_PREFIX)
