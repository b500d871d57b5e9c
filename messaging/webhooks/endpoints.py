"""Actions on webhook endpoints: create (the secret is returned once), change, delete, and
replay a delivery. The console and the API both call these; neither re-checks the rules."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.translation import gettext as _

from messaging.audit import record_audit
from messaging.delivery.work import after_commit
from messaging.errors import InvalidInput
from messaging.models import WebhookDelivery, WebhookEndpoint
from messaging.secrets import seal_webhook_secret
from messaging.webhooks.addresses import check_url
from messaging.webhooks.emit import SEND_TASK, forget_subscribed_types
from messaging.webhooks.events import EVENT_TYPES
from messaging.webhooks.signing import generate_secret


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once, never stored in clear


def clean_endpoint_fields(*, name: str, url: str, event_types: Any) -> tuple[str, str, list[str]]:
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    url = (url or "").strip()
    if not name:
        errors["name"] = [_("This field is required.")]
    if not isinstance(event_types, (list, tuple)) or not event_types:
        errors["event_types"] = [_("Choose at least one event type.")]
    elif unknown := sorted({str(t) for t in event_types} - EVENT_TYPES.keys()):
        errors["event_types"] = [_("Unknown event type: %(types)s.") % {"types": ", ".join(unknown)}]
    try:
        check_url(url)
    except InvalidInput as error:
        errors["url"] = [error.message]
    if errors:
        raise InvalidInput(" ".join(m for msgs in errors.values() for m in msgs), fields=errors)
    return name, url, sorted(set(event_types))


@transaction.atomic
def create_endpoint(
    *, actor: AbstractBaseUser | None, name: str, url: str, event_types: list[str], is_active: bool = True
) -> CreatedEndpoint:
    name, url, event_types = clean_endpoint_fields(name=name, url=url, event_types=event_types)
    secret = generate_secret()
    endpoint = WebhookEndpoint.objects.create(
        name=name,
        url=url,
        event_types=event_types,
        is_active=is_active,
        sealed_secret=seal_webhook_secret(secret),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    record_audit(actor=actor, verb="created", target=endpoint, changes={"url": {"before": None, "after": url}})
    transaction.on_commit(forget_subscribed_types)
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def change_endpoint(
    *, actor: AbstractBaseUser | None, endpoint: WebhookEndpoint, name: str, url: str, event_types: list[str], is_active: bool
) -> WebhookEndpoint:
    """Change what an endpoint receives; turning a disabled one back on clears its failures."""
    name, url, event_types = clean_endpoint_fields(name=name, url=url, event_types=event_types)
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    before = {"name": endpoint.name, "url": endpoint.url, "event_types": endpoint.event_types, "is_active": endpoint.is_active}
    after = {"name": name, "url": url, "event_types": event_types, "is_active": is_active}
    changes = {field: {"before": before[field], "after": after[field]} for field in after if before[field] != after[field]}
    if not changes:
        return endpoint
    endpoint.name, endpoint.url, endpoint.event_types, endpoint.is_active = name, url, event_types, is_active
    if is_active and not before["is_active"]:
        endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
        after_commit(SEND_TASK)  # what waited while it was off
    endpoint.save()
    record_audit(actor=actor, verb="changed", target=endpoint, changes=changes)
    transaction.on_commit(forget_subscribed_types)
    return endpoint


@transaction.atomic
def delete_endpoint(*, actor: AbstractBaseUser | None, endpoint: WebhookEndpoint) -> None:
    record_audit(actor=actor, verb="deleted", target=endpoint, changes={"url": {"before": endpoint.url, "after": None}})
    endpoint.delete()
    transaction.on_commit(forget_subscribed_types)


@transaction.atomic
def replay_delivery(*, actor: AbstractBaseUser | None, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, with the same webhook-id and body (receivers deduplicate on the id)."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.status, delivery.attempts, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, 0, None
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    record_audit(actor=actor, verb="requeued", target=delivery)
    after_commit(SEND_TASK)
    return delivery
