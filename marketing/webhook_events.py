"""The webhook event types marketing sends through messaging's `emit` (registered from
marketing.wiring, so endpoints can subscribe to them)."""

from django.utils.translation import gettext_lazy as _

from messaging.webhooks.events import register_event_type

CAMPAIGN_STATE_CHANGED = "campaign.state_changed"
ORDER_ATTRIBUTED = "order.attributed"


def register() -> None:
    register_event_type(CAMPAIGN_STATE_CHANGED, _("Campaign state changed"))
    register_event_type(ORDER_ATTRIBUTED, _("Order attributed to a campaign"))
