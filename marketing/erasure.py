"""Marketing's part of a GDPR erasure: messaging's `contact_erased` arrives inside the
erasing transaction; the erased contact's events, orders, payment deliveries and automation
runs keep what the figures count (names, amounts, statuses, dates) and lose the rest."""

from django.db.models import Q

from marketing.models import AutomationRun, AutomationStepLog, Event, Order, PaymentWebhookEvent
from messaging.erasure import aggregates_only, hashed_key, scrub_text, text_contains_any
from messaging.models import Contact

# Text properties the reports read that say nothing about the person.
KEPT_TEXT = {"order_id", "currency", "channel", "status", "campaign_id", "automation_id"}


def _kept(properties) -> dict:
    if not isinstance(properties, dict):
        return {}
    kept = aggregates_only(properties)
    kept.update({key: value for key, value in properties.items() if key in KEPT_TEXT and isinstance(value, str)})
    return kept


def _contains_any(text: str | None, values: frozenset[str]) -> bool:
    return bool(text) and scrub_text(text, values) != text


def on_contact_erased(sender, contact: Contact, values: frozenset[str], message_ids: list[int], **kwargs) -> None:
    events = list(Event.objects.filter(contact=contact).only("pk", "properties", "idempotency_key"))
    for event in events:
        event.properties = _kept(event.properties)
        if _contains_any(event.idempotency_key, values):
            event.idempotency_key = hashed_key(event.idempotency_key)
    Event.objects.bulk_update(events, ["properties", "idempotency_key"], batch_size=500)

    orders = list(Order.objects.filter(contact=contact).only("pk", "details", "external_id"))
    for order in orders:
        order.details = aggregates_only(order.details) if isinstance(order.details, dict) else {}
    Order.objects.bulk_update(orders, ["details"], batch_size=500)

    # The payment provider's deliveries for her orders, or naming her: id and type stay.
    annotations, mentions = text_contains_any("payload", {v for v in values if "@" in v})
    deliveries = PaymentWebhookEvent.objects.annotate(**annotations).filter(
        Q(order_id__in=[order.external_id for order in orders]) | mentions
    )
    for delivery in deliveries:
        payload = delivery.payload if isinstance(delivery.payload, dict) else {}
        delivery.payload = {key: payload[key] for key in ("id", "type") if key in payload}
        delivery.save(update_fields=["payload"])

    runs = list(AutomationRun.objects.filter(contact=contact).only("pk", "context", "trigger_key", "exit_reason"))
    for run in runs:
        run.context = _kept(run.context)
        if _contains_any(run.trigger_key, values):
            run.trigger_key = hashed_key(run.trigger_key)
        run.exit_reason = scrub_text(run.exit_reason, values)
    AutomationRun.objects.bulk_update(runs, ["context", "trigger_key", "exit_reason"], batch_size=500)

    logs = list(AutomationStepLog.objects.filter(message_id__in=message_ids).exclude(detail="").only("pk", "detail"))
    for log in logs:
        log.detail = scrub_text(log.detail, values)
    AutomationStepLog.objects.bulk_update(logs, ["detail"], batch_size=500)
