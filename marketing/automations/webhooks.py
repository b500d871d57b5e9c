"""Stripe-style payment webhooks (seed 000): a signed delivery becomes an order status
change through `record_order`, which emits `order_paid` / `order_payment_failed` and so
starts the payment flows. Every delivery id is stored once: a replay does nothing.

Signature: header `Stripe-Signature: t=<unix time>,v1=<hex>` where the hex is
HMAC-SHA256(secret, f"{t}.{raw body}"); deliveries older or newer than the tolerance are
refused (replayed captures), as Stripe's own libraries do.
"""

import hashlib
import hmac
import re
import time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from marketing.events import record_order
from marketing.models import Order, PaymentWebhookEvent
from messaging.contact_fields import normalise_email
from messaging.contacts import create_contact
from messaging.errors import InvalidInput, MailroomError
from messaging.models import Contact

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300
TIMESTAMP = re.compile(r"[0-9]{1,12}")

# Stripe event type → our order status. Other types are stored and ignored.
STATUSES = {
    "checkout.session.completed": Order.Status.PAID,
    "payment_intent.succeeded": Order.Status.PAID,
    "invoice.paid": Order.Status.PAID,
    "payment_intent.payment_failed": Order.Status.PAYMENT_FAILED,
    "invoice.payment_failed": Order.Status.PAYMENT_FAILED,
    "charge.refunded": Order.Status.REFUNDED,
}


class WebhookSignatureError(MailroomError):
    code = "bad_signature"


def sign_payload(*, payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value a sender computes (tests and the README use it)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(*, payload: bytes, header: str, secret: str, tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> None:
    if not secret:
        raise WebhookSignatureError(_("No webhook secret is configured."))
    # Stripe's library is not a dependency; this is its documented scheme. Everything in the
    # header is compared as bytes: compare_digest refuses non-ASCII str (a 500 before).
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        name, _sep, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    raw_timestamp = parts.get("t", [""])[0]
    if not TIMESTAMP.fullmatch(raw_timestamp):  # ASCII digits only, and few enough to be a time
        raise WebhookSignatureError(_("The signature header has no timestamp."))
    timestamp = int(raw_timestamp)
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError(_("The signature's timestamp is outside the tolerance."))
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest().encode()
    if not any(hmac.compare_digest(expected, candidate.encode("utf-8", "replace")) for candidate in parts.get("v1", [])):
        raise WebhookSignatureError(_("The signature does not match."))


def _contact_for(email: str | None, external_id: str | None) -> Contact:
    live = Contact.objects.active().filter(erased_at__isnull=True)
    contact = live.filter(external_id=external_id).first() if external_id else None
    if contact is None and email:
        try:
            email = normalise_email(email)
        except ValidationError as error:
            raise InvalidInput.from_validation_error(error) from None
        contact = live.filter(email=email).first() or create_contact(actor=None, email=email)
    if contact is None:
        raise InvalidInput(_("The payment names no customer email."), fields={"customer_email": [_("Required.")]})
    return contact


AMOUNTS = ("amount_total", "amount_received", "amount_paid", "amount")
TEXTS = ("customer_email", "receipt_email", "currency", "client_reference_id", "id", "hosted_invoice_url")


def _invalid(name: str, message: str) -> InvalidInput:
    return InvalidInput(_("The webhook's “%(field)s” %(problem)s.") % {"field": name, "problem": message}, fields={name: [message]})


def _read(payload: dict) -> tuple[str, str, dict, dict]:
    """The event's id, type, object and metadata, each of the type Stripe sends; anything
    else is refused before a row is written (a signed but malformed delivery is a 400)."""
    event_id, kind = payload.get("id"), payload.get("type")
    if not event_id or not kind:
        raise InvalidInput(_("A webhook event has an id and a type."), fields={"id": [_("Required.")]})
    for name, value in (("id", event_id), ("type", kind)):
        if not isinstance(value, str) or len(value) > 100:
            raise _invalid(name, _("must be text of at most 100 characters"))
    data = payload.get("data") or {}
    if not isinstance(data, dict):
        raise _invalid("data", _("must be an object"))
    obj = data.get("object") or {}
    if not isinstance(obj, dict):
        raise _invalid("data.object", _("must be an object"))
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _invalid("metadata", _("must be an object"))
    if not isinstance(obj.get("customer_details") or {}, dict):
        raise _invalid("customer_details", _("must be an object"))
    for name in AMOUNTS:
        value = obj.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _invalid(name, _("must be a whole number of cents"))
    texts = [(name, obj.get(name)) for name in TEXTS]
    texts += [(name, metadata.get(name)) for name in ("email", "contact_external_id", "order_id")]
    texts.append(("customer_details.email", (obj.get("customer_details") or {}).get("email")))
    for name, value in texts:
        allowed = str if "email" in name else (str, int)  # ids may come as numbers
        if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
            raise _invalid(name, _("must be text"))
    return event_id, kind, obj, metadata


@transaction.atomic
def handle_payment_webhook(*, payload: dict, provider: str = "stripe") -> tuple[PaymentWebhookEvent, bool]:
    """Store the delivery once and apply it; returns (stored delivery, whether it was new)."""
    event_id, kind, obj, metadata = _read(payload)
    existing = PaymentWebhookEvent.objects.filter(provider=provider, event_id=event_id).first()
    if existing is not None:
        return existing, False
    order_id = str(metadata.get("order_id") or obj.get("client_reference_id") or obj.get("id") or "")[:128]
    try:
        with transaction.atomic():
            delivery = PaymentWebhookEvent.objects.create(
                provider=provider, event_id=event_id, type=kind, order_id=order_id, payload=payload
            )
    except IntegrityError:  # the same delivery, concurrently
        return PaymentWebhookEvent.objects.get(provider=provider, event_id=event_id), False
    status = STATUSES.get(kind)
    if status is None or not order_id:
        return delivery, True
    email = (
        obj.get("customer_email") or obj.get("receipt_email") or (obj.get("customer_details") or {}).get("email") or metadata.get("email")
    )
    contact = _contact_for(email, metadata.get("contact_external_id"))
    cents = next((obj[k] for k in AMOUNTS if obj.get(k) is not None), 0)
    order = Order.objects.filter(external_id=order_id).first()
    details = dict(order.details) if order else {}
    for name in ("invoice_url", "retry_url", "activation_url"):
        if metadata.get(name):
            details[name] = metadata[name]
    if obj.get("hosted_invoice_url"):
        details["invoice_url"] = obj["hosted_invoice_url"]
    details.setdefault("stripe", {})[kind] = event_id
    record_order(
        contact=contact,
        external_id=order_id,
        amount=Decimal(cents) / 100,
        status=status,
        currency=str(obj.get("currency") or "EUR"),
        details=details,
    )
    return delivery, True
