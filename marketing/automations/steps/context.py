"""What a send step's message can say: the run's trigger data, plus the order the trigger
names ("order") or the contact's week ("weekly_progress"), and an appointment's time in the
contact's own time zone."""

from datetime import datetime, timedelta

from django.db.models import Count

from marketing.automations.clock import as_datetime, zone_of
from marketing.automations.matching import lookup, number
from marketing.models import AutomationRun, Event, Order

CONTEXT_BUILDERS = ("order", "weekly_progress")


def order_context(run: AutomationRun) -> dict:
    """order / invoice / shipment / retry_url / activation_url from the order the trigger names."""
    order_id = lookup(run.context, "order_id") or lookup(run.context, "order.id")
    order = Order.objects.filter(external_id=order_id).first() if order_id else None
    if order is None:
        return {}
    details = order.details or {}
    return {
        "order": {"number": order.external_id, "total": str(order.amount), "currency": order.currency, "status": order.status}
        | (details.get("order") or {}),
        "invoice": {"number": order.external_id, "url": details.get("invoice_url", "")} | (details.get("invoice") or {}),
        "shipment": details.get("shipment") or {},
        "retry_url": details.get("retry_url", ""),
        "activation_url": details.get("activation_url", ""),
    }


def weekly_progress_context(run: AutomationRun, now: datetime) -> dict:
    """The contact's numbers for the seven days before now: lessons completed and minutes."""
    since = now - timedelta(days=7)
    events = Event.objects.filter(contact_id=run.contact_id, name="lesson_completed", occurred_at__gte=since, occurred_at__lt=now)
    figures = events.aggregate(n=Count("id"))
    minutes = sum(int(number(lookup(props, "minutes")) or 0) for props in events.values_list("properties", flat=True))
    week_start = (now.astimezone(zone_of(run.contact)) - timedelta(days=7)).date()
    return {
        "progress": {
            "lessons_completed": figures["n"],
            "minutes": minutes,
            "week": week_start.isoformat(),
            "url": lookup(run.contact.attributes, "progress_url") or "",
        }
    }


def message_context(run: AutomationRun, config: dict, now: datetime) -> dict:
    context = dict(run.context)
    name = config.get("context") or ("order" if lookup(run.context, "order_id") else "")
    if name == "order":
        context |= order_context(run)
    elif name == "weekly_progress":
        context |= weekly_progress_context(run, now)
    appointment_at = as_datetime(context.get("appointment_at"), zone_of(run.contact))
    if appointment_at is not None:  # "when" in the contact's own time zone unless the host gave one
        when = appointment_at.astimezone(zone_of(run.contact)).strftime("%Y-%m-%d %H:%M")
        context["appointment"] = {"when": when} | (context.get("appointment") or {})
    return context
