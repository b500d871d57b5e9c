"""Ingesting what contacts do: `track_event` and the orders mirror.

Automations, loyalty and referrals listen to `event_tracked`, sent after the event's
transaction commits, so a listener never sees an event that was rolled back.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from marketing.models import Event, Order
from messaging.errors import InvalidInput
from messaging.models import Contact
from messaging.storable import require_storable

# Sent on commit with `event` (an Event) for every newly recorded event.
event_tracked = Signal()

EVENT_NAME_MAX = 100


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > EVENT_NAME_MAX or not all(ch.isalnum() or ch in "_.-:" for ch in name):
        raise InvalidInput(
            _("An event name is 1 to 100 letters, digits, '_', '.', '-' or ':'."), fields={"name": [_("Invalid event name.")]}
        )
    return name


def track_event(
    *,
    contact: Contact,
    name: str,
    properties: dict | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
    source: str = "api",
) -> tuple[Event, bool]:
    """Record an event once. The same idempotency key again returns the first event
    and `False`, so a replayed webhook or API retry triggers nothing twice."""
    name = _clean_name(name)
    if properties is not None and not isinstance(properties, dict):
        raise InvalidInput(_("Event properties must be an object."), fields={"properties": [_("Must be an object.")]})
    require_storable(name=name, properties=properties, idempotency_key=idempotency_key)
    if idempotency_key:
        existing = Event.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            event = Event.objects.create(
                contact=contact,
                name=name,
                properties=properties or {},
                occurred_at=occurred_at or timezone.now(),
                idempotency_key=idempotency_key or None,
                source=source,
            )
    except IntegrityError:
        # Lost a race with the same key: the other request recorded it.
        return Event.objects.get(idempotency_key=idempotency_key), False
    transaction.on_commit(lambda: event_tracked.send(sender=Event, event=event))
    return event, True


def _amount(value) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(_("The amount must be a number."), fields={"amount": [_("Must be a number.")]}) from None
    if amount < 0:
        raise InvalidInput(_("The amount cannot be negative."), fields={"amount": [_("Cannot be negative.")]})
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def record_order(
    *,
    contact: Contact,
    external_id: str,
    amount,
    status: str,
    currency: str = "EUR",
    placed_at: datetime | None = None,
    details: dict | None = None,
) -> tuple[Order, str | None]:
    """Create or update the mirror of one order. A status change records an
    `order_<status>` event (idempotent per order and status); returns the order and the
    previous status (None for a new order)."""
    if status not in Order.Status.values:
        raise InvalidInput(_("Unknown order status “%(status)s”.") % {"status": status}, fields={"status": [_("Unknown status.")]})
    external_id = (external_id or "").strip()
    if not external_id:
        raise InvalidInput(_("An order needs its id."), fields={"external_id": [_("This field is required.")]})
    amount = _amount(amount)
    require_storable(external_id=external_id, currency=currency, details=details)
    now = timezone.now()
    order = Order.objects.select_for_update().filter(external_id=external_id).first()
    previous = order.status if order else None
    if order is None:
        order = Order(contact=contact, external_id=external_id, placed_at=placed_at or now)
    elif order.contact_id != contact.pk:
        raise InvalidInput(_("This order belongs to another contact."), fields={"contact": [_("Order belongs to another contact.")]})
    order.amount, order.currency, order.status = amount, currency.upper()[:3], status
    order.details = details if details is not None else order.details
    if status in Order.REVENUE_STATUSES and order.paid_at is None:
        order.paid_at = now
    order.save()
    if previous != status:
        track_event(
            contact=contact,
            name=f"order_{status}",
            properties={"order_id": external_id, "amount": str(amount), "currency": order.currency, "previous_status": previous},
            idempotency_key=f"order:{external_id}:{status}",
            source="orders",
        )
    return order, previous


def on_contact_replied(sender, inbound, **kwargs) -> None:
    """An SMS or WhatsApp answer is the contact's activity: the `message_replied` event,
    once per inbound message (re-engagement restarts on any event; flows may exit on it)."""
    track_event(
        contact=inbound.contact,
        name="message_replied",
        properties={"channel": inbound.channel},
        idempotency_key=f"inbound:{inbound.pk}",
        source="reply",
    )
