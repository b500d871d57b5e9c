"""Adapters for host apps living in the same Django project: turn their model saves into
Mailroom events, with the previous-status tracking of seed 004 (pre_save remembers the
status, post_save emits `<prefix>_<status>` only when it changed).

    # shop/apps.py, in ready()
    from marketing.adapters import track_status_changes
    track_status_changes(Appointment, prefix="appointment", contact=lambda a: a.customer.mailroom_contact,
                         properties=lambda a: {"appointment_id": a.pk, "appointment_at": a.starts_at.isoformat()})
"""

from collections.abc import Callable

from django.db import models, transaction
from django.db.models.signals import post_save, pre_save

from marketing.events import track_event
from messaging.models import Contact


def track_status_changes(
    model: type[models.Model],
    *,
    prefix: str,
    contact: Callable[[models.Model], Contact | None],
    field: str = "status",
    properties: Callable[[models.Model], dict] | None = None,
    created_event: str | None = None,
) -> None:
    """Emit `<prefix>_<new status>` once per object and status (the idempotency key is
    `<prefix>:<pk>:<status>`), and `created_event` when an object is created."""

    def remember(sender, instance, **kwargs) -> None:
        previous = sender.objects.filter(pk=instance.pk).values_list(field, flat=True).first() if instance.pk else None
        instance._mailroom_previous_status = previous

    def emit(sender, instance, created: bool, **kwargs) -> None:
        person = contact(instance)
        if person is None:
            return
        status, previous = getattr(instance, field), getattr(instance, "_mailroom_previous_status", None)
        extra = (properties(instance) if properties else {}) | {"previous_status": previous}
        events = []
        if created and created_event:
            events.append((created_event, f"{prefix}:{instance.pk}:created"))
        if status != previous and status:
            events.append((f"{prefix}_{status}", f"{prefix}:{instance.pk}:{status}"))
        for name, key in events:
            transaction.on_commit(
                lambda name=name, key=key: track_event(contact=person, name=name, properties=extra, idempotency_key=key, source="signal")
            )

    uid = f"mailroom:{model._meta.label_lower}:{prefix}"
    pre_save.connect(remember, sender=model, weak=False, dispatch_uid=uid + ":pre")
    post_save.connect(emit, sender=model, weak=False, dispatch_uid=uid + ":post")
