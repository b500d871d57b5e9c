"""Writing the audit trail. Actions call `record_audit` inside their own transaction.

Role membership and permission changes are audited by a signal (`audit_m2m_change`),
whichever code makes them; the console says who is acting with `acting_as`. No entry
holds a secret value: `record_audit` hides every value whose name says it is one."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import models

from messaging.models import AuditEntry

HIDDEN = "[hidden]"
# Names whose values are credentials: password, webhook_secret, token_secret, api_key,
# apiKey, private_key, secret_hash, push_tokens… (matched anywhere in nested data).
SECRET_NAME = re.compile(r"secret|passw|token|api_?key|private_?key|credential", re.IGNORECASE)

_actor: ContextVar[AbstractBaseUser | None] = ContextVar("mailroom_audit_actor", default=None)
_m2m_audited_by_caller: ContextVar[bool] = ContextVar("mailroom_m2m_audited_by_caller", default=False)


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


def _hide(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _hide(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_hide(item) for item in value]
    return value if value in (None, "") else HIDDEN


def redact(value: Any, *, name: str = "") -> Any:
    """`value` with whatever sits under a secret-looking name replaced by "[hidden]"."""
    if name and SECRET_NAME.search(name):
        return _hide(value)
    if isinstance(value, dict):
        return {key: redact(item, name=str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def current_actor() -> AbstractBaseUser | None:
    """Who the surrounding `acting_as` block acts for (None outside one)."""
    return _actor.get()


@contextmanager
def acting_as(actor: AbstractBaseUser | None) -> Iterator[None]:
    """Changes audited by signals inside this block are recorded as `actor`'s."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


@contextmanager
def m2m_audited_by_caller() -> Iterator[None]:
    """For code that writes its own audit entry for the membership changes it makes."""
    token = _m2m_audited_by_caller.set(True)
    try:
        yield
    finally:
        _m2m_audited_by_caller.reset(token)


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
        changes=redact(changes or {}),
    )


# --- role membership and permissions -----------------------------------------------------
def related_labels(owner: models.Model, field: str) -> list[str]:
    """What `owner` holds through `field`: role names, or permissions as "app.codename"."""
    related = getattr(owner, field).all()
    if related.model is Permission:
        return sorted(f"{app}.{codename}" for app, codename in related.values_list("content_type__app_label", "codename"))
    return sorted(str(item) for item in related)


def m2m_change(field: str, before: list[str], after: list[str]) -> dict[str, Any]:
    """Roles read best as before/after; permission sets (Admin holds hundreds) as what
    was added and removed."""
    if field.endswith("permissions"):
        return {field: {"added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after))}}
    return {field: {"before": before, "after": after}}


def audited_relations() -> dict[type[models.Model], tuple[type[models.Model], str, str]]:
    """through model → (owner model, field, verb) for the relations that grant rights."""
    from django.contrib.auth import get_user_model

    user = get_user_model()
    return {
        user.groups.through: (user, "groups", "roles_changed"),
        user.user_permissions.through: (user, "user_permissions", "permissions_changed"),
        Group.permissions.through: (Group, "permissions", "permissions_changed"),
    }


def audit_m2m_change(sender, instance: models.Model, action: str, reverse: bool, pk_set: set | None, **kwargs) -> None:
    """m2m_changed on users' roles and permissions and roles' permissions: one entry per
    owner (user or role) whose rights changed, with before/after, from any code path."""
    if _m2m_audited_by_caller.get():
        return
    owner_model, field, verb = audited_relations()[sender]
    stash = f"_mailroom_audit_{field}_before"
    if action in ("pre_add", "pre_remove", "pre_clear"):
        if not reverse:
            owners = [instance]
        elif action == "pre_clear":
            owners = list(owner_model.objects.filter(**{field: instance}))
        else:
            owners = list(owner_model.objects.filter(pk__in=pk_set or ()))
        setattr(instance, stash, [(owner, related_labels(owner, field)) for owner in owners])
        return
    for owner, before in getattr(instance, stash, ()):
        after = related_labels(owner, field)
        if after != before:
            record_audit(actor=_actor.get(), verb=verb, target=owner, changes=m2m_change(field, before, after))
    if hasattr(instance, stash):
        delattr(instance, stash)
