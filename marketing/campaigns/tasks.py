"""django-q2 entry points for campaigns. Thin: ids in, reload, call the tick. Only the
task registry (`marketing.tasks`, the dotted paths of marketing.schedules) imports this."""

from marketing.campaigns import tick
from marketing.models import Campaign


def fan_out_campaign(campaign_id: int) -> int:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return tick.fan_out_and_settle(campaign=campaign).messages


def run_campaigns() -> dict:
    """Every minute: see `tick.run_campaigns`."""
    return tick.run_campaigns()
