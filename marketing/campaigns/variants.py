"""A/B tests: two to four variants (subject or content), a test share, a wait, and the
winner by open or click rate. Scoring only: the campaign tick (`campaigns.tick.pick_winner`)
gives the winner to the rest and runs the fan-out for them."""

from dataclasses import dataclass

from django.db.models import Count, Q

from marketing.models import Campaign, CampaignRecipient, CampaignVariant
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
