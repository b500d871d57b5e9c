"""Read side of automations: the per-automation report and run history."""

from datetime import timedelta

from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Value
from django.utils.dateparse import parse_date

from marketing.automations.presets import PRESETS
from marketing.models import Automation, AutomationRun, AutomationStepLog, Event, Order
from messaging.models import Contact, OutboxMessage


def automation_runs(*, automation: Automation) -> QuerySet[AutomationRun]:
    return automation.runs.select_related("contact").prefetch_related("logs").order_by("-started_at", "-id")


def converted_runs(automation: Automation) -> QuerySet[AutomationRun]:
    """Runs whose contact did the conversion event within the window after entering."""
    if not automation.conversion_event:
        return automation.runs.none()
    window_end = ExpressionWrapper(
        OuterRef("started_at") + Value(timedelta(days=automation.conversion_window_days)), output_field=DateTimeField()
    )
    conversions = Event.objects.filter(
        contact=OuterRef("contact"), name=automation.conversion_event, occurred_at__gte=OuterRef("started_at"), occurred_at__lte=window_end
    )
    return automation.runs.filter(Exists(conversions))


def automation_report(*, automation: Automation) -> dict[str, int]:
    """Entered, in progress, completed, exited, failed, messages queued/sent, conversions."""
    Status = AutomationRun.Status
    runs = automation.runs.aggregate(
        entered=Count("id"),
        active=Count("id", filter=Q(status=Status.ACTIVE)),
        completed=Count("id", filter=Q(status=Status.COMPLETED)),
        exited=Count("id", filter=Q(status=Status.EXITED)),
        failed=Count("id", filter=Q(status=Status.FAILED)),
    )
    messages = OutboxMessage.objects.filter(
        automation_logs__run__automation=automation, automation_logs__outcome=AutomationStepLog.Outcome.SENT
    ).distinct()
    counts = messages.order_by().values("status").annotate(n=Count("id", distinct=True))
    by_status = {row["status"]: row["n"] for row in counts}
    return {
        **runs,
        "messages_queued": sum(by_status.values()),
        "messages_sent": by_status.get(OutboxMessage.Status.SENT, 0),
        "messages_suppressed": by_status.get(OutboxMessage.Status.SUPPRESSED, 0),
        "messages_cancelled": by_status.get(OutboxMessage.Status.CANCELLED, 0),
        "conversions": converted_runs(automation).count(),
    }


# --- what the trigger form offers ------------------------------------------------------------
KNOWN_EVENT_LIMIT = 300
SAMPLE_CONTACTS = 500


def known_event_names() -> list[str]:
    """Event names a marketer may pick: those the presets and the order mirror use, those
    automations already name, and those contacts sent (the most recent names first seen)."""
    names: set[str] = {"message_replied", *(f"order_{status}" for status in Order.Status.values)}
    for preset in PRESETS.values():
        names.update(preset.trigger.get("events") or [])
        names.update(rule["event"] for rule in preset.exit_events)
    for trigger, exits, conversion in Automation.objects.values_list("trigger", "exit_events", "conversion_event"):
        names.update((trigger or {}).get("events") or [] if isinstance(trigger, dict) else [])
        names.update(rule.get("event", "") for rule in exits or [] if isinstance(rule, dict))
        names.add(conversion)
    names.update(Event.objects.order_by().values_list("name", flat=True).distinct()[:KNOWN_EVENT_LIMIT])
    return sorted(name for name in names if name and name != "*")


def known_date_attributes() -> list[str]:
    """Contact attributes that hold a date: `birthday`, those automations use, and those
    a sample of recent contacts carry with a date-looking value."""
    names: set[str] = {"birthday"}
    for trigger in Automation.objects.filter(trigger_type=Automation.Trigger.DATE).values_list("trigger", flat=True):
        if isinstance(trigger, dict) and trigger.get("attribute"):
            names.add(str(trigger["attribute"]))
    for attributes in Contact.objects.order_by("-pk").values_list("attributes", flat=True)[:SAMPLE_CONTACTS]:
        for key, value in (attributes or {}).items():
            if _looks_like_a_date(value):
                names.add(key)
    return sorted(names)


def _looks_like_a_date(value) -> bool:
    if not isinstance(value, str) or len(value) < 10:
        return False
    try:
        return parse_date(value[:10]) is not None
    except ValueError:  # 2026-02-30
        return False
