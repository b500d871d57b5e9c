"""The django-q2 jobs Mailroom runs: the one registry of what the cluster may execute.

Schedules are created idempotently after migrate. Higher apps add theirs with
`register_schedule` (and their after-commit kicks with `register_task`) from their
AppConfig.ready(), so this module never imports them.

A schedule names a dotted path the cluster imports and calls, so a free-text path is a
way to run anything on the server (`subprocess.getoutput`). Only registered functions
may run: the console offers them as a choice, `guard_schedule` refuses any other on
save, and `guard_enqueue` swaps anything else the cluster is handed (a row that got in
another way, a resubmitted task) for `refuse_unregistered_job`, which fails visibly.
"""

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.models import Schedule

logger = logging.getLogger(__name__)

HEARTBEAT = "messaging.tasks.heartbeat"
REFUSED = "messaging.tasks.refuse_unregistered_job"

SCHEDULES = [
    {"name": "cluster heartbeat", "func": HEARTBEAT, "schedule_type": Schedule.MINUTES, "minutes": 1},
    # The safety net: picks up scheduled messages, retries whose backoff ran out and
    # batches whose worker died (expired leases).
    {"name": "drain outbox", "func": "messaging.tasks.drain_outbox", "schedule_type": Schedule.MINUTES, "minutes": 1},
    # Inbound messages stored by a process that died before their handler ran.
    {
        "name": "process stranded inbound",
        "func": "messaging.tasks.process_stranded_inbound",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
    # Email inboxes with an IMAP host: replies, bounce reports, complaints (messaging.mailbox).
    {"name": "read email inboxes", "func": "messaging.tasks.poll_email_inboxes", "schedule_type": Schedule.MINUTES, "minutes": 1},
    # Console imports whose worker was killed: resumed, or failed with the reason.
    {"name": "recover import jobs", "func": "messaging.tasks.recover_import_jobs", "schedule_type": Schedule.MINUTES, "minutes": 1},
    # Outbound webhooks whose retry is due (events kick it too, after commit).
    {"name": "send webhooks", "func": "messaging.tasks.send_webhooks", "schedule_type": Schedule.MINUTES, "minutes": 1},
    {"name": "clean delivery logs", "func": "messaging.tasks.clean_delivery_logs", "schedule_type": Schedule.DAILY},
    {"name": "clean expired sign-ups", "func": "messaging.tasks.clean_expired_signups", "schedule_type": Schedule.DAILY},
    # Retention: old message bodies and delivery events (messaging.delivery.retention).
    {"name": "prune old messages", "func": "messaging.tasks.prune_old_messages", "schedule_type": Schedule.DAILY},
    {
        "name": "clean orphaned attachment files",
        "func": "messaging.tasks.clean_orphaned_attachment_files",
        "schedule_type": Schedule.DAILY,
    },
    # Every hour: the contacts whose local time is Monday 09:xx get their weekly digest.
    {"name": "weekly digests", "func": "messaging.tasks.send_weekly_digests", "schedule_type": Schedule.HOURLY},
]


def next_time_of_day(at: time) -> datetime:
    """The next occurrence of a local wall-clock time (settings.TIME_ZONE)."""
    now = timezone.localtime()
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


# name -> function giving the first run, for schedules pinned to a time of day.
def next_hour(minute: int = 5) -> datetime:
    """The next hh:mm with this minute: a job run hourly at a minute past the hour."""
    now = timezone.now()
    candidate = now.replace(minute=minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(hours=1)


FIRST_RUNS: dict[str, Callable[[], datetime]] = {
    "clean delivery logs": lambda: next_time_of_day(time(2, 0)),
    # After midnight's rollup has counted yesterday, before the morning's sending.
    "prune old messages": lambda: next_time_of_day(time(3, 30)),
    "weekly digests": next_hour,
}


# Functions enqueued only as kicks after a commit (`messaging.delivery.work.after_commit`), never
# picked for a schedule in the console.
TASKS: set[str] = {REFUSED, "messaging.tasks.send_password_reset", "messaging.tasks.run_import_job"}


def register_schedule(spec: dict, *, first_run: Callable[[], datetime] | None = None) -> None:
    if not any(existing["name"] == spec["name"] for existing in SCHEDULES):
        SCHEDULES.append(spec)
    if first_run is not None:
        FIRST_RUNS[spec["name"]] = first_run


def register_task(func: str) -> None:
    """Allow the cluster to run `func` when Mailroom's own code enqueues it."""
    TASKS.add(func)


def schedule_functions() -> dict[str, str]:
    """{dotted path: schedule name} for every registered schedule: what a schedule may call."""
    functions: dict[str, str] = {}
    for spec in SCHEDULES:
        functions.setdefault(spec["func"], spec["name"])
    return functions


def dotted_path(func: str | Callable) -> str:
    return func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"


def may_run(func: str | Callable | None) -> bool:
    """Whether the cluster may call `func`: a registered schedule's function or task."""
    if not func:
        return False
    path = dotted_path(func)
    return path in TASKS or path in schedule_functions()


def check_schedule_func(func: str) -> None:
    """The one rule for what a schedule may call; ValidationError naming the function."""
    if func not in schedule_functions():
        raise ValidationError(
            {"func": _("%(func)s is not one of Mailroom's scheduled jobs; pick one from the list.") % {"func": func}},
            code="unregistered_job",
        )


def guard_schedule(sender, instance: Schedule, raw: bool = False, **kwargs) -> None:
    """pre_save on Schedule: whatever saves it (console, shell, code) cannot point it at an
    unregistered function or give it a result hook. A row saved again by the scheduler
    with the function it already had is let through (the cluster guard refuses to run it),
    so one old bad row cannot stop every other schedule."""
    if instance.hook:
        raise ValidationError({"hook": _("Schedules cannot have a result hook.")}, code="hook")
    if instance.pk is not None:
        stored = Schedule.objects.filter(pk=instance.pk).values_list("func", flat=True).first()
        if stored == instance.func:
            return
    check_schedule_func(instance.func)


def guard_enqueue(sender, task: dict, **kwargs) -> None:
    """django-q2's pre_enqueue: every task (scheduled, kicked or resubmitted) passes here.
    An unregistered function is replaced by one that fails with the reason, so nothing
    else runs and the refusal shows in "Failed jobs"; an unregistered hook is dropped."""
    func = task.get("func")
    if not may_run(func):
        logger.warning("refused to enqueue unregistered job %r (task %s)", dotted_path(func) if func else func, task.get("name"))
        task["func"], task["args"], task["kwargs"] = REFUSED, (), {"func": str(dotted_path(func) if func else func)}
    if task.get("hook") and not may_run(task["hook"]):
        logger.warning("dropped unregistered hook %r (task %s)", task["hook"], task.get("name"))
        task.pop("hook")


def ensure_schedules() -> None:
    for spec in SCHEDULES:
        first_run = FIRST_RUNS.get(spec["name"])
        # The first run is set once; migrating again must not move a pinned time.
        create_defaults = {**spec, "repeats": -1, **({"next_run": first_run()} if first_run else {})}
        Schedule.objects.update_or_create(name=spec["name"], defaults={**spec, "repeats": -1}, create_defaults=create_defaults)
