"""Marketing's entries on the contact page's timeline (messaging.timeline): what the
contact did (events) and the orders she placed. Registered from MarketingConfig.ready()."""

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing import policies
from marketing.models import Event, Order
from messaging.models import Contact
from messaging.timeline import Entry, admin_link, compact, register_timeline_source

# record_order tracks an `order_<status>` event for every status change: the order itself
# is on the timeline, so those events are not shown a second time.
ORDER_EVENT_SOURCE = "orders"
ORDER_VARIANTS = {"paid": "success", "fulfilled": "success", "payment_failed": "danger", "cancelled": "warning", "refunded": "warning"}


def event_entries(contact: Contact, limit: int) -> list[Entry]:
    events = (
        Event.objects.filter(contact=contact)
        .exclude(source=ORDER_EVENT_SOURCE)
        .only("pk", "name", "properties", "source", "occurred_at")
        .order_by("-occurred_at", "-id")[:limit]
    )
    return [
        Entry(
            when=event.occurred_at,
            kind="event",
            title=event.name,
            detail=compact(event.properties) if event.properties else "",
            link=admin_link("marketing_event", event.pk),
            sort_id=event.pk,
        )
        for event in events
    ]


def _order_detail(order: Order) -> str:
    if order.paid_at:
        return _("paid %(when)s") % {"when": date_format(order.paid_at, "SHORT_DATETIME_FORMAT")}
    return ""


def order_entries(contact: Contact, limit: int) -> list[Entry]:
    orders = (
        Order.objects.filter(contact=contact)
        .only("pk", "external_id", "amount", "currency", "status", "placed_at", "paid_at")
        .order_by("-placed_at", "-id")[:limit]
    )
    return [
        Entry(
            when=order.placed_at,
            kind="order",
            title=_("Order %(id)s · %(amount)s %(currency)s")
            % {"id": order.external_id, "amount": order.amount, "currency": order.currency},
            detail=_order_detail(order),
            link=admin_link("marketing_order", order.pk),
            status=order.get_status_display(),
            status_variant=ORDER_VARIANTS.get(order.status, ""),
            sort_id=order.pk,
        )
        for order in orders
    ]


def register_timeline_sources() -> None:
    register_timeline_source(kind="event", label=gettext_lazy("Events"), policy=policies.can_view_events, fetch=event_entries)
    register_timeline_source(kind="order", label=gettext_lazy("Orders"), policy=policies.can_view_orders, fetch=order_entries)
