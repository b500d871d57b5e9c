"""Who a campaign reaches: the audience (segments minus exclusions), why each contact is
or is not eligible, and the counts of the dry run (its samples and problems are added by
`campaigns.preview`, above this module).

Eligibility is one annotated queryset: the dry run aggregates it, the fan-out copies it
into CampaignRecipient with INSERT … SELECT, so the two can never disagree.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, CharField, Count, Exists, FilteredRelation, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from marketing.models import Campaign, CampaignRecipient, SegmentMember
from messaging.models import Channel, Contact, OutboxMessage, Subscription, Suppression, Topic

Skip = CampaignRecipient.Skip
COUNTED_STATUSES = (OutboxMessage.Status.QUEUED, OutboxMessage.Status.SENDING, OutboxMessage.Status.SENT)


def address_field(channel: str) -> str:
    return "email" if channel == Channel.EMAIL else "phone"


def audience(campaign: Campaign) -> QuerySet[Contact]:
    """Live members of any of the campaign's segments, minus members of any excluded one.
    EXISTS / NOT EXISTS, not IN / NOT IN: PostgreSQL plans them as semi and anti joins,
    where a NOT IN over a million members became a materialised list scanned per contact."""
    included = list(campaign.segments.values_list("pk", flat=True))
    excluded = list(campaign.excluded_segments.values_list("pk", flat=True))
    contacts = Contact.objects.filter(deleted_at__isnull=True, erased_at__isnull=True).filter(
        Exists(SegmentMember.objects.filter(segment_id__in=included, contact=OuterRef("pk")))
    )
    if excluded:
        contacts = contacts.filter(~Exists(SegmentMember.objects.filter(segment_id__in=excluded, contact=OuterRef("pk"))))
    return contacts


def over_frequency_cap(*, cap: int, days: int | None = None) -> QuerySet:
    """Ids of contacts who already got `cap` marketing messages in the window. Not
    correlated: the database computes it once (a hashed subplan), where a count per
    contact cost an outbox probe per audience member — and a full scan each when the
    planner's statistics were stale (minutes at 200,000 contacts on PostgreSQL)."""
    since = timezone.now() - timedelta(days=days or settings.MAILROOM_FREQUENCY_CAP_DAYS)
    return (
        OutboxMessage.objects.filter(is_marketing=True, status__in=COUNTED_STATUSES, created_at__gte=since, contact__isnull=False)
        .exclude(topic__time_sensitive=True)  # reminders do not count against the cap (seed 004)
        .order_by()
        .values("contact_id")
        .annotate(n=Count("id"))
        .filter(n__gte=cap)
        .values("contact_id")
    )


def with_eligibility(campaign: Campaign) -> QuerySet[Contact]:
    """The audience, each contact annotated with `skip` ("" when eligible), the first
    reason that applies in this order: no address, suppressed, no consent, frequency cap."""
    channel, topic = campaign.channel, campaign.topic
    addr = address_field(channel)
    contacts = audience(campaign).annotate(
        suppressed=Exists(Suppression.objects.filter(channel=channel, address=OuterRef(addr))),
    )
    conditions = [
        When(Q(**{f"{addr}__isnull": True}) | Q(**{addr: ""}), then=Value(Skip.ADDRESS)),
        When(suppressed=True, then=Value(Skip.SUPPRESSED)),
    ]
    if topic.kind == Topic.Kind.MARKETING:
        # A LEFT JOIN on the contact's subscription (at most one: unique per contact, topic and
        # channel), not an EXISTS: PostgreSQL hashes the topic's subscriptions once instead of
        # probing the index per contact, and a CASE cannot turn an EXISTS into such a join.
        contacts = contacts.annotate(
            consent=FilteredRelation(
                "subscriptions",
                condition=Q(
                    subscriptions__topic=topic, subscriptions__channel=channel, subscriptions__status=Subscription.Status.SUBSCRIBED
                ),
            )
        )
        conditions.append(When(consent__isnull=True, then=Value(Skip.CONSENT)))
        if campaign.respect_frequency_cap and settings.MAILROOM_FREQUENCY_CAP:
            capped = over_frequency_cap(cap=settings.MAILROOM_FREQUENCY_CAP)
            conditions.append(When(pk__in=capped, then=Value(Skip.FREQUENCY)))
    return contacts.annotate(skip=Case(*conditions, default=Value(""), output_field=CharField()))


@dataclass
class SampleRender:
    contact: str
    subject: str
    html: str
    text: str
    variant: str = ""
    missing: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class DryRun:
    audience: int = 0
    eligible: int = 0
    excluded_consent: int = 0
    suppressed: int = 0
    missing_address: int = 0
    over_frequency_cap: int = 0
    samples: list[SampleRender] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)  # eligible contacts per language
    missing_languages: list[str] = field(default_factory=list)  # of the audience, without a variant
    warnings: list[str] = field(default_factory=list)  # shown, but do not stop submission

    def as_dict(self) -> dict:
        return {
            "audience": self.audience,
            "eligible": self.eligible,
            "excluded_consent": self.excluded_consent,
            "suppressed": self.suppressed,
            "missing_address": self.missing_address,
            "over_frequency_cap": self.over_frequency_cap,
        }


def count_eligibility(campaign: Campaign) -> DryRun:
    """Grouped by reason, so each contact's reason is worked out once (a FILTER per figure
    repeated the whole CASE, and its subqueries, six times per contact)."""
    rows = with_eligibility(campaign).order_by().values("skip").annotate(n=Count("pk"))
    by_reason = {row["skip"]: row["n"] for row in rows}
    return DryRun(
        audience=sum(by_reason.values()),
        eligible=by_reason.get("", 0),
        excluded_consent=by_reason.get(Skip.CONSENT, 0),
        suppressed=by_reason.get(Skip.SUPPRESSED, 0),
        missing_address=by_reason.get(Skip.ADDRESS, 0),
        over_frequency_cap=by_reason.get(Skip.FREQUENCY, 0),
    )
