"""Read side of automations: the per-automation report and run history."""

from datetime import timedelta

from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet, Value

from marketing.models import Automation, AutomationRun, AutomationStepLog, Event
from messaging.models import OutboxMessage


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
