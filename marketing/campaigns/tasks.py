"""django-q2 entry points for campaigns. Thin: ids in, reload, call actions."""

import logging

from django.utils import timezone

from marketing.campaigns import actions, fanout, guardrails, queries, variants
from marketing.campaigns.attribution import attribute_conversions
from marketing.models import Campaign
from messaging.errors import MailroomError

logger = logging.getLogger(__name__)


def fan_out_campaign(campaign_id: int) -> int:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return fanout.fan_out(campaign=campaign).messages


def complete_finished_campaigns(sender=None, *, campaign_ids, **kwargs) -> int:
    """Listener of messaging's `campaign_messages_recorded`: right after a batch with messages
    of these campaigns is recorded, settle those with nothing left to send (one query finds
    them; `complete_campaign` re-checks under the row lock). The minute tick stays the net."""
    return sum(settle_campaign(campaign) == "sent" for campaign in queries.campaigns_finished_sending(campaign_ids))


def settle_campaign(campaign: Campaign) -> str:
    """What the minute tick and the after-batch listener both do for a sending campaign:
    pause it when its rates passed a guardrail, else mark it sent when nothing is left
    to send. Returns "paused", "sent" or ""."""
    if guardrails.enforce_guardrails(campaign=campaign):
        return "paused"
    return "sent" if actions.complete_campaign(campaign=campaign) else ""


def run_campaigns() -> dict:
    """Every minute: start due campaigns, resume interrupted fan-outs, pick A/B winners,
    enforce guardrails, mark finished campaigns sent, attribute conversions.

    After downtime django-q2 runs this once (Q_CLUSTER catch_up=False), and each due
    campaign starts once: its state changes under a row lock, so there is no storm of
    duplicate starts however many ticks were missed or however many clusters run it."""
    now = timezone.now()
    done = {"started": 0, "fanned_out": 0, "winners": 0, "paused": 0, "sent": 0}
    for campaign in queries.campaigns_due(now=now):
        try:
            if actions.start_campaign(actor=None, campaign=campaign).state == Campaign.State.SENDING:
                done["started"] += 1
                fanout.fan_out(campaign=campaign)
        except MailroomError:
            logger.exception("campaign %s could not start", campaign.pk)
    for campaign in queries.campaigns_sending():
        if campaign.fanout in (Campaign.Fanout.NOT_STARTED, Campaign.Fanout.RUNNING):
            fanout.fan_out(campaign=campaign)
            done["fanned_out"] += 1
        elif campaign.fanout == Campaign.Fanout.TESTING and campaign.ab_test_ends_at and campaign.ab_test_ends_at <= now:
            variants.pick_winner(campaign=campaign, now=now)
            done["winners"] += 1
        if settled := settle_campaign(campaign):
            done[settled] += 1
    done["conversions"] = attribute_conversions()
    return done
