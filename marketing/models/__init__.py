from marketing.models.analytics import DailyStat
from marketing.models.automations import Automation, AutomationRun, AutomationStep, AutomationStepLog, PaymentWebhookEvent
from marketing.models.campaigns import Campaign, CampaignConversion, CampaignRecipient, CampaignVariant
from marketing.models.events import Event, Order
from marketing.models.segments import Segment, SegmentMember

__all__ = [
    "Automation",
    "AutomationRun",
    "AutomationStep",
    "AutomationStepLog",
    "Campaign",
    "CampaignConversion",
    "CampaignRecipient",
    "CampaignVariant",
    "DailyStat",
    "Event",
    "Order",
    "PaymentWebhookEvent",
    "Segment",
    "SegmentMember",
]
