"""Sending due webhook deliveries: the body of the cluster task `messaging.tasks.send_webhooks`.

Per endpoint, one worker at a time (a lease on the endpoint row), oldest delivery first,
stopping at the first one that is not yet due or fails: a later event never overtakes an
earlier one waiting for its retry. A failed attempt is retried after 30 s·2^n (capped) up to
MAILROOM_WEBHOOK_MAX_ATTEMPTS; MAILROOM_WEBHOOK_DISABLE_AFTER failed attempts in a row turn
the endpoint off (the console shows it). The URL is checked again before every request.
"""

import logging
import time
import uuid
from datetime import timedelta

import requests
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.audit import record_audit
from messaging.errors import InvalidInput
from messaging.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging.secrets import SecretUnavailable, unseal_webhook_secret
from messaging.webhooks.addresses import check_url
from messaging.webhooks.emit import forget_subscribed_types, wire_body
from messaging.webhooks.signing import signed_headers
from messaging.webhooks.transport import webhook_session

logger = logging.getLogger(__name__)

PER_ENDPOINT = 100


def backoff_seconds(attempts: int) -> float:
    """30 s after the first failed attempt, then 60, 120… capped."""
    return min(30 * 2 ** max(attempts - 1, 0), settings.MAILROOM_WEBHOOK_BACKOFF_CAP_SECONDS)


def _due() -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())


def send_due_webhooks(*, limit: int = 1000, time_budget: float | None = None) -> int:
    """Send what is due, endpoint by endpoint; returns how many attempts were made. With a
    time budget no new attempt starts once it is spent (the minute schedule goes on)."""
    deadline = time.monotonic() + time_budget if time_budget else None
    endpoint_ids = list(
        WebhookDelivery.objects.filter(_due(), status=WebhookDelivery.Status.PENDING, endpoint__is_active=True)
        .order_by()
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
    sent = 0
    for endpoint_id in endpoint_ids:
        if sent >= limit or (deadline and time.monotonic() >= deadline):
            break
        sent += drain_endpoint(endpoint_id=endpoint_id, limit=min(PER_ENDPOINT, limit - sent), deadline=deadline)
    return sent


def _lease(endpoint_id: int, owner: str) -> bool:
    now = timezone.now()
    until = now + timedelta(seconds=settings.MAILROOM_WEBHOOK_TIMEOUT_SECONDS + settings.MAILROOM_LEASE_SECONDS)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_owner=owner)
    return bool(WebhookEndpoint.objects.filter(free, pk=endpoint_id, is_active=True).update(lease_until=until, lease_owner=owner))


def drain_endpoint(*, endpoint_id: int, limit: int = PER_ENDPOINT, deadline: float | None = None) -> int:
    owner = uuid.uuid4().hex
    attempts = 0
    try:
        while attempts < limit and not (deadline and time.monotonic() >= deadline) and _lease(endpoint_id, owner):
            delivery = WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=WebhookDelivery.Status.PENDING).order_by("id").first()
            if delivery is None or (delivery.next_attempt_at and delivery.next_attempt_at > timezone.now()):
                break  # nothing left, or the oldest waits for its retry: keep the order
            endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
            attempts += 1
            if not attempt_delivery(endpoint=endpoint, delivery=delivery):
                break
    finally:
        WebhookEndpoint.objects.filter(pk=endpoint_id, lease_owner=owner).update(lease_until=None, lease_owner="")
    return attempts


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str]:
    """(status code, error): one signed request; never raises."""
    try:
        check_url(endpoint.url)  # DNS may have changed since the endpoint was saved
        secret = unseal_webhook_secret(endpoint.sealed_secret)
        body = wire_body(delivery)
    except (InvalidInput, SecretUnavailable) as error:
        return None, str(error)
    headers = signed_headers(secret=secret, webhook_id=delivery.webhook_id, timestamp=timezone.now(), body=body)
    try:
        with webhook_session() as session:
            response = session.post(
                endpoint.url,
                data=body.encode(),
                headers={**headers, "user-agent": "Mailroom-Webhooks/1"},
                timeout=settings.MAILROOM_WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,  # a redirect could lead anywhere, private addresses included
            )
            response.close()
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: {error}"
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


def attempt_delivery(*, endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> bool:
    """One attempt, logged; updates the delivery and the endpoint's failure count."""
    started = time.monotonic()
    status_code, error = _post(endpoint, delivery)
    now = timezone.now()
    WebhookAttempt.objects.create(
        delivery=delivery, status_code=status_code, error=error[:500], duration_ms=int((time.monotonic() - started) * 1000)
    )
    delivery.attempts += 1
    delivery.last_status_code, delivery.last_error = status_code, error[:500]
    ok = not error
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDelivery.Status.DELIVERED, now, None
    elif delivery.attempts >= settings.MAILROOM_WEBHOOK_MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
    delivery.save(update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at", "next_attempt_at"])
    logger.info("webhook %s (%s) to endpoint %s: %s", delivery.webhook_id, delivery.event_type, endpoint.pk, status_code or error[:200])
    if ok:
        if endpoint.consecutive_failures:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        return True
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    endpoint.refresh_from_db(fields=["consecutive_failures", "is_active"])
    if endpoint.is_active and endpoint.consecutive_failures >= settings.MAILROOM_WEBHOOK_DISABLE_AFTER:
        disable_endpoint(endpoint=endpoint, reason=error)
    return False


def disable_endpoint(*, endpoint: WebhookEndpoint, reason: str) -> None:
    reason = _("Turned off after %(count)d failed attempts in a row; last error: %(error)s") % {
        "count": endpoint.consecutive_failures,
        "error": reason,
    }
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, disabled_at=timezone.now(), disabled_reason=reason[:300])
    record_audit(actor=None, verb="deactivated", target=endpoint, changes={"is_active": {"before": True, "after": False}})
    forget_subscribed_types()
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
