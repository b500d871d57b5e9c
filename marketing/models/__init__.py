from marketing.models.analytics import DailyStat
from marketing.models.automations import Automation, AutomationRun, AutomationStep, AutomationStepLog, PaymentWebhookEvent
from marketing.models.campaigns import Campaign, CampaignConversion, CampaignRecipient, CampaignVariant, FanoutChunk
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
    "FanoutChunk",
    "Order",
    "PaymentWebhookEvent",
    "Segment",
    "SegmentMember",
]
