"""The webhook event types growth sends through messaging's `emit` (registered from
growth.wiring). Ledger events carry ids and amounts, never a gift card's code. A referral
coupon's code must reach the host (it honours it at checkout): that type is registered as
secret, so its deliveries are sealed at rest and shown to no one."""

from django.utils.translation import gettext_lazy as _

from messaging.webhooks.events import register_event_type

LOYALTY_LEDGER_ENTRY = "loyalty.ledger_entry"
GIFT_CARD_LEDGER_ENTRY = "gift_card.ledger_entry"
REFERRAL_COUPON_ISSUED = "referral.coupon_issued"
REFERRAL_COUPON_REVOKED = "referral.coupon_revoked"


def register() -> None:
    register_event_type(LOYALTY_LEDGER_ENTRY, _("Loyalty points ledger entry"))
    register_event_type(GIFT_CARD_LEDGER_ENTRY, _("Gift card ledger entry"))
    register_event_type(REFERRAL_COUPON_ISSUED, _("Referral coupon issued (carries the code)"), secret=True)
    register_event_type(REFERRAL_COUPON_REVOKED, _("Referral coupon revoked"))
