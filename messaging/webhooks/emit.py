"""`emit(event_type, data)`: the one way any app announces an event to webhook endpoints.

With no active endpoint subscribed to the type it costs one cache read. Otherwise, after the
current transaction commits (an event that rolled back never leaves), one delivery row is
written per subscribed endpoint, with its webhook-id and body fixed for every retry, and the
cluster is asked to send them.
"""

import json
import logging
import uuid
from typing import Any

from django.core.cache import caches
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from messaging.delivery.work import after_commit
from messaging.models import WebhookDelivery, WebhookEndpoint
from messaging.webhooks.events import EVENT_TYPES

logger = logging.getLogger(__name__)

SEND_TASK = "messaging.tasks.send_webhooks"
_TYPES_KEY = "mailroom:webhooks:subscribed-types"
# Kept per process (no query, no network on the hot paths: an open pixel, a send batch). A
# new endpoint is heard of by other processes within this many seconds; a disabled or
# deleted one is never sent to (deliveries are written for active endpoints only).
TYPES_SECONDS = 10


def subscribed_types() -> frozenset[str]:
    """The event types at least one active endpoint wants."""
    cache = caches["local"]
    types = cache.get(_TYPES_KEY)
    if types is None:
        types = frozenset(t for ts in WebhookEndpoint.objects.filter(is_active=True).values_list("event_types", flat=True) for t in ts)
        cache.set(_TYPES_KEY, types, TYPES_SECONDS)
    return types


def forget_subscribed_types(**kwargs) -> None:
    """post_save / post_delete on WebhookEndpoint, and the endpoint actions (this process)."""
    caches["local"].delete(_TYPES_KEY)


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def emit(event_type: str, data: dict[str, Any], *, on_commit: bool = True) -> None:
    """Announce `event_type` with `data` (JSON-able: ids, strings, dates) to its endpoints."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}: register it with register_event_type()")
    if event_type not in subscribed_types():
        return
    body = json.dumps({"type": event_type, "timestamp": timezone.now().isoformat(), "data": data}, cls=DjangoJSONEncoder)

    def write() -> None:
        try:
            write_deliveries(event_type=event_type, body=body)
        except Exception:  # the change is committed already: log, never fail the caller
            logger.exception("could not write webhook deliveries for %s", event_type)

    if on_commit:
        transaction.on_commit(write)
    else:
        write_deliveries(event_type=event_type, body=body)


def write_deliveries(*, event_type: str, body: str) -> list[WebhookDelivery]:
    endpoint_ids = [
        pk for pk, types in WebhookEndpoint.objects.filter(is_active=True).values_list("pk", "event_types") if event_type in types
    ]
    if not endpoint_ids:
        return []
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint_id=pk, event_type=event_type, webhook_id=new_webhook_id(), body=body) for pk in endpoint_ids]
    )
    after_commit(SEND_TASK)
    return deliveries


# DeliveryEvent kinds (and send outcomes) that endpoints can hear about.
MESSAGE_EVENTS = {
    "sent": "message.sent",
    "delivered": "message.delivered",
    "bounced": "message.bounced",
    "complained": "message.complained",
    "opened": "message.opened",
    "clicked": "message.clicked",
    "failed": "message.failed",
}


def emit_message_event(kind: str, *, message_id: int | None, **details: Any) -> None:
    """A message's event (ids only: no address or content leaves through a webhook)."""
    if event_type := MESSAGE_EVENTS.get(kind):
        emit(event_type, {"message_id": message_id, **details})
