"""The campaign tick: what moves a sending campaign along. It orchestrates the lower
modules and is the one place that acts on what they compute — starts due campaigns, runs
(or resumes) fan-outs and settles them, pauses a campaign whose guardrail tripped
(`guardrails` only computes the reason), marks finished ones sent, picks A/B winners
(`variants` only scores) and attributes conversions.

`tasks` (the django-q2 entry points) calls in here; nothing here is called from below.
"""

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from marketing.campaigns import actions, queries
from marketing.campaigns.attribution import attribute_conversions
from marketing.campaigns.fanout import FanoutResult, fan_out, plan_chunks, schedule_recipients
from marketing.campaigns.guardrails import breached_limit, delivery_rates
from marketing.campaigns.variants import choose_winner, variant_scores
from marketing.models import Campaign, CampaignRecipient, CampaignVariant
from messaging.audit import record_audit
from messaging.errors import MailroomError

logger = logging.getLogger(__name__)

Status = CampaignRecipient.Status


def enforce_guardrails(*, campaign: Campaign) -> str | None:
    """Pause a sending campaign whose rates passed its limits and tell the author; returns the reason."""
    reason = breached_limit(campaign, delivery_rates(campaign))
    if reason and campaign.state == Campaign.State.SENDING:
        actions.pause_campaign(actor=None, campaign=campaign, reason=_("Paused automatically: %(reason)s.") % {"reason": reason})
    return reason


def settle_campaign(campaign: Campaign) -> str:
    """What the minute tick, the after-batch listener and the end of a fan-out all do for a
    sending campaign: pause it when its rates passed a guardrail, else mark it sent when
    nothing is left to send. Returns "paused", "sent" or ""."""
    if enforce_guardrails(campaign=campaign):
        return "paused"
    return "sent" if actions.complete_campaign(campaign=campaign) else ""


def complete_finished_campaigns(sender=None, *, campaign_ids, **kwargs) -> int:
    """Listener of messaging's `campaign_messages_recorded`: right after a batch with messages
    of these campaigns is recorded, settle those with nothing left to send (one query finds
    them; `complete_campaign` re-checks under the row lock). The minute tick stays the net."""
    return sum(settle_campaign(campaign) == "sent" for campaign in queries.campaigns_finished_sending(campaign_ids))


def fan_out_and_settle(*, campaign: Campaign) -> FanoutResult:
    """Run (or resume) the fan-out; when this pass finished it, settle the campaign: the
    drains may have sent every message before the fan-out was marked done, and then no
    later batch would complete the campaign."""
    result = fan_out(campaign=campaign)
    if result.finished:
        settle_campaign(Campaign.objects.get(pk=campaign.pk))
    return result


def pick_winner(*, campaign: Campaign, now=None) -> CampaignVariant | None:
    """When the wait is over: choose the winner, give it to every holdout recipient and run
    the fan-out again for them. Does nothing before the wait ends or when not sending."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state != Campaign.State.SENDING or campaign.fanout != Campaign.Fanout.TESTING:
            return None
        if campaign.ab_test_ends_at and campaign.ab_test_ends_at > now:
            return None
        scores = variant_scores(campaign)
        winner = choose_winner(campaign, scores)
        campaign.winner = winner
        campaign.fanout = Campaign.Fanout.RUNNING
        campaign.save(update_fields=["winner", "fanout", "updated_at"])
        if campaign.send_mode != Campaign.SendMode.LOCAL:
            campaign.send_at = None  # the rest goes now (quiet hours and throttle still apply); not saved
        schedule_recipients(campaign, status=Status.HOLDOUT, now=now)
        plan_chunks(campaign, status=Status.HOLDOUT)
        CampaignRecipient.objects.filter(campaign=campaign, status=Status.HOLDOUT).update(variant=winner, status=Status.QUEUED)
        record_audit(
            actor=None,
            verb="picked A/B winner",
            target=campaign,
            changes={
                "winner": {"before": None, "after": winner.label if winner else None},
                "scores": {s.variant.label: {"sent": s.sent, "opens": s.opens, "clicks": s.clicks} for s in scores},
            },
        )
    fan_out_and_settle(campaign=campaign)
    return winner


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
                fan_out_and_settle(campaign=campaign)
        except MailroomError:
            logger.exception("campaign %s could not start", campaign.pk)
    for campaign in queries.campaigns_sending():
        if campaign.fanout in (Campaign.Fanout.NOT_STARTED, Campaign.Fanout.RUNNING):
            fan_out_and_settle(campaign=campaign)
            done["fanned_out"] += 1
        elif campaign.fanout == Campaign.Fanout.TESTING and campaign.ab_test_ends_at and campaign.ab_test_ends_at <= now:
            pick_winner(campaign=campaign, now=now)
            done["winners"] += 1
        if settled := settle_campaign(campaign):
            done[settled] += 1
    done["conversions"] = attribute_conversions()
    return done
