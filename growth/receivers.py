"""Growth listens to marketing's `event_tracked` (sent on commit for every new event).

Paid orders earn points and qualify referrals; refunds reverse both. Each action is
idempotent per order (ledger unique constraints, the referral state machine), so a replayed
event or a double webhook delivery changes nothing. A failure here is logged and never
reaches the request that tracked the event.
"""

import logging

from growth.loyalty import earn_points_for_order, reverse_points_for_order
from growth.models import GiftCard, Referral
from growth.referrals import qualify_referral_for_order, reverse_referral_for_order
from marketing.models import Event

logger = logging.getLogger(__name__)

PAID_EVENTS = frozenset({"order_paid", "order_fulfilled"})
REFUND_EVENTS = frozenset({"order_refunded"})


def on_event_tracked(sender, event: Event, **kwargs) -> None:
    if event.name not in PAID_EVENTS and event.name not in REFUND_EVENTS:
        return
    properties = event.properties if isinstance(event.properties, dict) else {}
    order_reference = str(properties.get("order_id") or "").strip()
    if not order_reference:
        logger.warning("event %s (%s) has no order_id; growth ignores it", event.pk, event.name)
        return
    try:
        handle_order_event(event=event, order_reference=order_reference, amount=properties.get("amount", "0"))
    except Exception:
        logger.exception("growth could not handle event %s (%s, order %s)", event.pk, event.name, order_reference)


def handle_order_event(*, event: Event, order_reference: str, amount) -> None:
    contact = event.contact
    if event.name in PAID_EVENTS:
        earn_points_for_order(contact=contact, order_reference=order_reference, amount=amount)
        qualify_referral_for_order(friend=contact, order_reference=order_reference, amount=amount)
    else:
        reverse_points_for_order(contact=contact, order_reference=order_reference)
        reverse_referral_for_order(order_reference=order_reference)


def on_contact_erased(sender, contact, values, message_ids, **kwargs) -> None:
    """Growth's part of a GDPR erasure (messaging's `contact_erased`, inside the erasing
    transaction): balances, ledgers and referral states stay; what names or traces the person goes."""
    from django.db.models import Q

    GiftCard.objects.filter(recipient=contact).update(sender_name="", message="")
    Referral.objects.filter(Q(referrer=contact) | Q(friend=contact)).update(signup_ip=None, device_id="", note="")
