"""`emit(event_type, data)`: the one way any app announces an event to webhook endpoints.

With no active endpoint subscribed to the type it costs one cache read. Otherwise one
delivery row is written per subscribed endpoint, with its webhook-id and body fixed for every
retry, in the caller's transaction (a transactional outbox): the event and the change it
announces commit together or not at all, so a process dying right after a commit loses no
event and a rolled-back change announces nothing. The cluster is asked to send them once the
transaction commits. Callers in autocommit wrap the change and the `emit` in one atomic block. The body of a type
registered as secret is sealed at rest.
"""

import json
import uuid
from typing import Any

from django.core.cache import caches
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from messaging.delivery.work import after_commit
from messaging.models import WebhookDelivery, WebhookEndpoint
from messaging.secrets import seal_webhook_body, unseal_webhook_body, webhook_body_hidden_notice
from messaging.webhooks.events import EVENT_TYPES, is_secret_event_type

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


def emit(event_type: str, data: dict[str, Any]) -> None:
    """Announce `event_type` with `data` (JSON-able: ids, strings, dates) to its endpoints."""
    emit_many([(event_type, data)])


def is_heard(event_type: str) -> bool:
    """Whether some active endpoint wants `event_type` (a hot path opens a transaction only then)."""
    return event_type in subscribed_types()


def emit_many(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Several events at once (a send batch): one endpoint query and one insert for all."""
    unknown = {event_type for event_type, _data in events} - EVENT_TYPES.keys()
    if unknown:
        raise ValueError(f"unknown webhook event type {sorted(unknown)}: register it with register_event_type()")
    wanted = subscribed_types()
    now = timezone.now().isoformat()
    bodies = [
        (event_type, json.dumps({"type": event_type, "timestamp": now, "data": data}, cls=DjangoJSONEncoder))
        for event_type, data in events
        if event_type in wanted
    ]
    if bodies:
        write_deliveries(bodies)


def write_deliveries(bodies: list[tuple[str, str]]) -> list[WebhookDelivery]:
    """One delivery per (event, active endpoint subscribed to its type), in the events' order."""
    endpoints = list(WebhookEndpoint.objects.filter(is_active=True).values_list("pk", "event_types"))
    deliveries = [
        _delivery(endpoint_id=pk, event_type=event_type, body=body)
        for event_type, body in bodies
        for pk, types in endpoints
        if event_type in types
    ]
    if not deliveries:
        return []
    deliveries = WebhookDelivery.objects.bulk_create(deliveries)
    after_commit(SEND_TASK)
    return deliveries


def _delivery(*, endpoint_id: int, event_type: str, body: str) -> WebhookDelivery:
    if is_secret_event_type(event_type):
        return WebhookDelivery(
            endpoint_id=endpoint_id, event_type=event_type, webhook_id=new_webhook_id(), body=seal_webhook_body(body), is_sealed=True
        )
    return WebhookDelivery(endpoint_id=endpoint_id, event_type=event_type, webhook_id=new_webhook_id(), body=body)


def wire_body(delivery: WebhookDelivery) -> str:
    """The exact body that goes on the wire (the same on every retry and replay); raises
    SecretUnavailable for a sealed body that no longer opens."""
    return unseal_webhook_body(delivery.body) if delivery.is_sealed else delivery.body


def shown_body(delivery: WebhookDelivery) -> str:
    """The body as staff may read it: a sealed one is never shown."""
    return f"[{webhook_body_hidden_notice()}]" if delivery.is_sealed else delivery.body


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


def message_event(kind: str, *, message_id: int | None, **details: Any) -> tuple[str, dict[str, Any]] | None:
    """(event type, data) for a message's event, None for a kind endpoints do not hear about.
    Ids only: no address or content leaves through a webhook."""
    event_type = MESSAGE_EVENTS.get(kind)
    return (event_type, {"message_id": message_id, **details}) if event_type else None


def emit_message_event(kind: str, *, message_id: int | None, **details: Any) -> None:
    if event := message_event(kind, message_id=message_id, **details):
        emit(*event)
