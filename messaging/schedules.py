"""The django-q2 schedules Mailroom relies on, created idempotently after migrate.

Higher apps add theirs with `register_schedule` from their AppConfig.ready(), so this
module never imports them.
"""

from collections.abc import Callable
from datetime import datetime, time, timedelta

from django.utils import timezone
from django_q.models import Schedule

HEARTBEAT = "messaging.tasks.heartbeat"

SCHEDULES = [
    {"name": "cluster heartbeat", "func": HEARTBEAT, "schedule_type": Schedule.MINUTES, "minutes": 1},
    # The safety net: picks up scheduled messages, retries whose backoff ran out and
    # batches whose worker died (expired leases).
    {"name": "drain outbox", "func": "messaging.tasks.drain_outbox", "schedule_type": Schedule.MINUTES, "minutes": 1},
    {"name": "clean delivery logs", "func": "messaging.tasks.clean_delivery_logs", "schedule_type": Schedule.DAILY},
]


def next_time_of_day(at: time) -> datetime:
    """The next occurrence of a local wall-clock time (settings.TIME_ZONE)."""
    now = timezone.localtime()
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + timedelta(days=1)


# name -> function giving the first run, for schedules pinned to a time of day.
FIRST_RUNS: dict[str, Callable[[], datetime]] = {"clean delivery logs": lambda: next_time_of_day(time(2, 0))}


def register_schedule(spec: dict, *, first_run: Callable[[], datetime] | None = None) -> None:
    if not any(existing["name"] == spec["name"] for existing in SCHEDULES):
        SCHEDULES.append(spec)
    if first_run is not None:
        FIRST_RUNS[spec["name"]] = first_run


def ensure_schedules() -> None:
    for spec in SCHEDULES:
        first_run = FIRST_RUNS.get(spec["name"])
        # The first run is set once; migrating again must not move a pinned time.
        create_defaults = {**spec, "repeats": -1, **({"next_run": first_run()} if first_run else {})}
        Schedule.objects.update_or_create(name=spec["name"], defaults={**spec, "repeats": -1}, create_defaults=create_defaults)
