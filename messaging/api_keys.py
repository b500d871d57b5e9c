"""API key actions: create (the secret is returned once), revoke, and the lookup the
API's authentication uses. Each key acts as its own service user in one role group."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.audit import acting_as, record_audit
from messaging.errors import InvalidInput, MailroomError
from messaging.models import ApiKey

PREFIX_BYTES = 6  # 8 URL-safe characters
SECRET_BYTES = 32  # 43 URL-safe characters
SERVICE_USER_PREFIX = "api-key-"
LAST_USED_PRECISION = timedelta(minutes=1)  # at most one write per key per minute
RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


class ApiKeyRejected(MailroomError):
    code = "api_key_rejected"


@dataclass(frozen=True)
class CreatedApiKey:
    key: ApiKey
    token: str  # "<prefix>.<secret>": shown once, never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_rate(value: str | None) -> str:
    """ "600/min" and the like (DRF's rate syntax), or "" for the default. The one rule for
    the console form and the action."""
    value = (value or "").strip().replace(" ", "")
    if value and not RATE.match(value):
        raise ValidationError(_("Write a rate as a number of requests per unit, e.g. 600/min."))
    return value


@transaction.atomic
def create_api_key(*, actor: AbstractBaseUser | None, name: str, role: Group, rate: str = "") -> CreatedApiKey:
    """A new key for an integration, acting with `role`'s permissions."""
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = [_("This field is required.")]
    try:
        rate = normalise_rate(rate)
    except ValidationError as error:
        errors["rate"] = error.messages
    if errors:
        raise InvalidInput(" ".join(m for msgs in errors.values() for m in msgs), fields=errors)
    prefix = secrets.token_urlsafe(PREFIX_BYTES).replace("-", "x").replace("_", "y")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    user = get_user_model().objects.create_user(username=f"{SERVICE_USER_PREFIX}{prefix}", password=None)
    user.first_name = name[:150]
    user.save(update_fields=["first_name"])
    with acting_as(actor):  # the role grant is audited on the service user, as the creator's
        user.groups.add(role)
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        role=role,
        user=user,
        rate=rate,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    record_audit(actor=actor, verb="created", target=key, changes={"role": {"before": None, "after": role.name}})
    return CreatedApiKey(key=key, token=f"{prefix}.{secret}")


@transaction.atomic
def revoke_api_key(*, actor: AbstractBaseUser | None, key: ApiKey) -> ApiKey:
    """The key stops working at once. Idempotent; a revoked key is never re-enabled."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.revoked_by = actor if actor is not None and actor.is_authenticated else None
    key.save(update_fields=["revoked_at", "revoked_by"])
    # The service user goes inactive too, so no permission check can pass for it.
    type(key.user).objects.filter(pk=key.user_id).update(is_active=False)
    record_audit(actor=actor, verb="revoked", target=key, changes={"revoked_at": {"before": None, "after": key.revoked_at.isoformat()}})
    return key


def key_for_token(token: str) -> ApiKey:
    """The usable key a "<prefix>.<secret>" token names; raises ApiKeyRejected otherwise.
    Records when it was last used (at most once a minute, to spare the database)."""
    prefix, _dot, secret = (token or "").strip().partition(".")
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first() if prefix and secret else None
    if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
        raise ApiKeyRejected(_("Invalid API key."))
    if key.revoked_at is not None:
        raise ApiKeyRejected(_("This API key has been revoked."), code="api_key_revoked")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
