"""Writing the audit trail. Actions call `record_audit` inside their own transaction."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from messaging.models import AuditEntry


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, (str, int, float, bool, type(None), list, dict)):
        return value
    return str(value)


def snapshot(instance: models.Model, fields: list[str]) -> dict[str, Any]:
    return {name: _plain(getattr(instance, name)) for name in fields}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": x, "after": y}} for the fields that changed."""
    return {
        name: {"before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def record_audit(
    *,
    actor: AbstractBaseUser | None,
    verb: str,
    target: models.Model | None = None,
    target_type: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    if target is not None:
        target_type = target._meta.label_lower
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb,
        target_type=target_type,
        target_id=str(target.pk) if target is not None and target.pk is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
    )
