"""Read-side facts about the running system, for operators: the cluster's heartbeat, the
backlog of due messages, resting providers. `manage.py doctor`, the /metrics endpoint and
the console notices ask these functions, so one rule decides what "alive" or "late" means.

Every query here is cheap on a big outbox: an index probe or a bounded count.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Min
from django.utils import timezone
from django_q.models import Success

from messaging.models import OutboxMessage, Provider
from messaging.schedules import HEARTBEAT

Status = OutboxMessage.Status


def last_heartbeat() -> datetime.datetime | None:
    """When the cluster last ran the minute heartbeat (its newest django-q2 success row),
    or None if never. django-q2 keeps at most `save_limit` success rows, so this reads a
    small table."""
    return Success.objects.filter(func=HEARTBEAT).order_by("-stopped").values_list("stopped", flat=True).first()


def heartbeat_age(*, now: datetime.datetime | None = None) -> float | None:
    """Seconds since the last heartbeat, or None when no cluster ever ran one."""
    last = last_heartbeat()
    return None if last is None else max(0.0, ((now or timezone.now()) - last).total_seconds())


def heartbeat_is_missing(age: float | None) -> bool:
    """The one rule: no heartbeat ever, or none for MAILROOM_HEARTBEAT_ALERT_SECONDS."""
    return age is None or age > settings.MAILROOM_HEARTBEAT_ALERT_SECONDS


def due_messages():
    """Queued messages whose time has come (the partial outbox_queued index: priority, next_attempt_at)."""
    return OutboxMessage.objects.filter(status=Status.QUEUED, next_attempt_at__lte=timezone.now())


def oldest_due_at() -> datetime.datetime | None:
    """When the longest-waiting due message became due, or None: one index probe per
    priority (the index is ordered by time within a priority, not across them)."""
    found = [
        oldest
        for priority in OutboxMessage.Priority.values
        if (oldest := due_messages().filter(priority=priority).aggregate(oldest=Min("next_attempt_at"))["oldest"])
    ]
    return min(found, default=None)


def count_due_messages(*, up_to: int) -> int:
    """How many messages are due, counted up to `up_to` (a bounded count: a million-message
    backlog costs `up_to` index entries, not a million)."""
    return due_messages().order_by().values("pk")[:up_to].count()


def resting_providers() -> list[Provider]:
    """Active providers resting after failures in a row (a handful of rows)."""
    return list(
        Provider.objects.filter(is_active=True, resting_until__gt=timezone.now())
        .only("name", "channel", "resting_until", "consecutive_failures", "last_failure_at")
        .order_by("resting_until")
    )


@dataclass(frozen=True)
class Backlog:
    oldest_due_at: datetime.datetime | None
    due: int  # counted up to MAILROOM_BACKLOG_ALERT_COUNT + 1
    late: bool  # a due message has waited past MAILROOM_BACKLOG_ALERT_MINUTES
    large: bool  # more than MAILROOM_BACKLOG_ALERT_COUNT messages are due


def backlog() -> Backlog:
    """The backlog rule: late when the oldest due message has waited longer than
    MAILROOM_BACKLOG_ALERT_MINUTES, large when more than MAILROOM_BACKLOG_ALERT_COUNT are
    due (0 turns either off)."""
    minutes, threshold = settings.MAILROOM_BACKLOG_ALERT_MINUTES, settings.MAILROOM_BACKLOG_ALERT_COUNT
    oldest = oldest_due_at()
    due = count_due_messages(up_to=threshold + 1) if threshold and oldest is not None else 0
    late = bool(minutes) and oldest is not None and timezone.now() - oldest > datetime.timedelta(minutes=minutes)
    return Backlog(oldest_due_at=oldest, due=due, late=late, large=bool(threshold) and due > threshold)
