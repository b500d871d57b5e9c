"""A/B tests: two to four variants (subject or content), a test share, a wait, and the
winner by open or click rate sent to the rest automatically."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from marketing.models import Campaign, CampaignRecipient, CampaignVariant, FanoutChunk
from messaging.audit import record_audit
from messaging.models import DeliveryEvent, OutboxMessage

Status = CampaignRecipient.Status


@dataclass
class VariantScore:
    variant: CampaignVariant
    sent: int
    opens: int
    clicks: int

    @property
    def open_rate(self) -> float:
        return self.opens / self.sent if self.sent else 0.0

    @property
    def click_rate(self) -> float:
        return self.clicks / self.sent if self.sent else 0.0


def variant_scores(campaign: Campaign, *, test_only: bool = True) -> list[VariantScore]:
    """Per variant: messages sent, and how many distinct messages were opened / clicked.
    People, not requests, decide: a message counts once however many events its token
    fires (2,400 clicks from one token are one click), and a click that looks automated
    (a mail gateway's link scanner, a prefetch) is no click at all."""
    human_click = Q(kind=DeliveryEvent.Kind.CLICKED, is_automated=False)
    recipients = CampaignRecipient.objects.filter(campaign=campaign, message__isnull=False)
    if test_only:
        recipients = recipients.filter(is_test=True)
    sent = dict(recipients.filter(message__status=OutboxMessage.Status.SENT).values_list("variant_id").annotate(n=Count("id")).order_by())
    events = (
        DeliveryEvent.objects.filter(message__campaign_recipient__in=recipients)
        .values_list("message__campaign_recipient__variant_id")
        .annotate(
            opens=Count("message", distinct=True, filter=Q(kind=DeliveryEvent.Kind.OPENED) | human_click),
            clicks=Count("message", distinct=True, filter=human_click),
        )
        .order_by()
    )
    engaged = {variant_id: (opens, clicks) for variant_id, opens, clicks in events}
    return [
        VariantScore(variant=v, sent=sent.get(v.pk, 0), opens=engaged.get(v.pk, (0, 0))[0], clicks=engaged.get(v.pk, (0, 0))[1])
        for v in campaign.variants.order_by("label")
    ]


def choose_winner(campaign: Campaign, scores: list[VariantScore]) -> CampaignVariant | None:
    """The best rate on the campaign's metric; a tie goes to the earlier label (A before B)."""
    if not scores:
        return None
    rate = (lambda s: s.click_rate) if campaign.ab_metric == Campaign.Metric.CLICK else (lambda s: s.open_rate)
    best = max(scores, key=lambda s: (rate(s), -ord(s.variant.label)))
    return best.variant


def finish_fanout(*, campaign: Campaign) -> None:
    """After a pass of message creation: either everything is queued (done), or holdouts
    wait for the A/B winner (testing, the wait starts now)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state != Campaign.State.SENDING or campaign.fanout != Campaign.Fanout.RUNNING:
            return
        if FanoutChunk.objects.filter(campaign=campaign, done=False).exists():
            return  # another worker is still creating messages
        if campaign.winner_id is None and CampaignRecipient.objects.filter(campaign=campaign, status=Status.HOLDOUT).exists():
            campaign.fanout = Campaign.Fanout.TESTING
            campaign.ab_test_ends_at = timezone.now() + timedelta(hours=campaign.ab_wait_hours)
        else:
            campaign.fanout = Campaign.Fanout.DONE
        campaign.save(update_fields=["fanout", "ab_test_ends_at", "updated_at"])


def pick_winner(*, campaign: Campaign, now=None) -> CampaignVariant | None:
    """When the wait is over: choose the winner, give it to every holdout recipient and run
    the fan-out again for them. Does nothing before the wait ends or when not sending."""
    from marketing.campaigns.fanout import fan_out, plan_chunks, schedule_recipients

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
    fan_out(campaign=campaign)
    return winner
