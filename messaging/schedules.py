"""The django-q2 schedules Mailroom relies on, created idempotently after migrate."""

from django_q.models import Schedule

HEARTBEAT = "messaging.tasks.heartbeat"

SCHEDULES = [
    {"name": "cluster heartbeat", "func": HEARTBEAT, "schedule_type": Schedule.MINUTES, "minutes": 1},
]


def ensure_schedules() -> None:
    for spec in SCHEDULES:
        Schedule.objects.update_or_create(name=spec["name"], defaults={**spec, "repeats": -1})
