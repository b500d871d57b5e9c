"""The django-q2 schedules Mailroom relies on, created idempotently after migrate."""

from django_q.models import Schedule

HEARTBEAT = "messaging.tasks.heartbeat"

SCHEDULES = [
    {"name": "cluster heartbeat", "func": HEARTBEAT, "schedule_type": Schedule.MINUTES, "minutes": 1},
    # The safety net: picks up scheduled messages, retries whose backoff ran out and
    # batches whose worker died (expired leases).
    {"name": "drain outbox", "func": "messaging.tasks.drain_outbox", "schedule_type": Schedule.MINUTES, "minutes": 1},
    {"name": "clean delivery logs", "func": "messaging.tasks.clean_delivery_logs", "schedule_type": Schedule.DAILY},
]


def ensure_schedules() -> None:
    for spec in SCHEDULES:
        Schedule.objects.update_or_create(name=spec["name"], defaults={**spec, "repeats": -1})
