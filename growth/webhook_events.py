"""The webhook event types growth sends through messaging's `emit` (registered from
growth.wiring). Ledger events carry ids and amounts, never a gift card's code."""

from django.utils.translation import gettext_lazy as _

from messaging.webhooks.events import register_event_type

LOYALTY_LEDGER_ENTRY = "loyalty.ledger_entry"
GIFT_CARD_LEDGER_ENTRY = "gift_card.ledger_entry"


def register() -> None:
    register_event_type(LOYALTY_LEDGER_ENTRY, _("Loyalty points ledger entry"))
    register_event_type(GIFT_CARD_LEDGER_ENTRY, _("Gift card ledger entry"))
