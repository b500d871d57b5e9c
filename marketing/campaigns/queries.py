"""Read-side querysets and figures for campaigns: due campaigns, the calendar, the report."""

from datetime import UTC, datetime, time, timedelta

from django.db.models import Case, CharField, Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce, TruncHour

from marketing.models import Automation, Campaign, CampaignConversion, CampaignRecipient, FanoutChunk
from messaging.delivery.retention import events_kept_since
from messaging.ids import parse_id
from messaging.metadata import AUTOMATION_KEY, DEFERRED_RENDER
from messaging.models import DeliveryEvent, OutboxMessage, TemplateVersion, TrackedLink
from messaging.queries import prefer_index_scans

State = Campaign.State
# Every campaign with a send time has its place in the calendar, drafts included: a campaign
# moved there goes back to draft (it needs a new approval) and stays where it was dropped.
CALENDAR_STATES = (
    State.DRAFT,
    State.PENDING_APPROVAL,
    State.APPROVED,
    State.SCHEDULED,
    State.SENDING,
    State.PAUSED,
    State.SENT,
    State.CANCELLED,
)


def local_start(send_at: datetime, local_time: time) -> datetime:
    """For "09:00 in each contact's time zone": the first instant any zone (UTC+14) reaches it."""
    return datetime.combine(send_at.date(), local_time, tzinfo=UTC) - timedelta(hours=14)


def campaigns_due(*, now: datetime) -> list[Campaign]:
    """Scheduled campaigns whose time has come. A "09:00 local" campaign keeps its day in
    send_at and is due when the first zone on Earth (UTC+14) reaches that local time."""
    at = Campaign.objects.filter(state=State.SCHEDULED, send_at__lte=now).exclude(send_mode=Campaign.SendMode.LOCAL)
    local = Campaign.objects.filter(state=State.SCHEDULED, send_mode=Campaign.SendMode.LOCAL, send_at__lte=now + timedelta(days=1))
    due = list(at) + [c for c in local if c.local_time and local_start(c.send_at, c.local_time) <= now]
    return sorted(due, key=lambda c: (c.send_at, c.pk))


def campaigns_sending() -> QuerySet[Campaign]:
    return Campaign.objects.filter(state=State.SENDING).order_by("pk")


def campaigns_finished_sending(campaign_ids) -> QuerySet[Campaign]:
    """Of these campaigns, the ones sending whose messages are all created and none of which
    is queued or in flight: what `complete_campaign` would mark sent. One query, set-based."""
    recipients = CampaignRecipient.objects.filter(campaign=OuterRef("pk"))
    # Newest recipient first: messages leave roughly in recipient order, so while a campaign
    # sends, its newest rows are still queued and the probe stops at once; only the final
    # check walks the whole audience (~0.6 µs a recipient on SQLite). Only an included
    # (queued) recipient has a message that can still be queued or in flight.
    busy = recipients.filter(
        status=CampaignRecipient.Status.QUEUED, message__status__in=[OutboxMessage.Status.QUEUED, OutboxMessage.Status.SENDING]
    ).order_by("-pk")
    return (
        Campaign.objects.filter(pk__in=campaign_ids, state=State.SENDING, fanout=Campaign.Fanout.DONE)
        .exclude(Exists(recipients.filter(status=CampaignRecipient.Status.HOLDOUT)))
        .alias(busy=Subquery(busy.values("pk")[:1]))  # not Exists(): it drops the ORDER BY
        .filter(busy__isnull=True)
    )


SEND_PROGRESS_STATES = (State.SENDING, State.PAUSED)


@prefer_index_scans()
def send_progress(campaign: Campaign) -> dict | None:
    """While a campaign sends (or is paused): its messages by outcome against its recipients,
    read from the outbox in one query (None in any other state)."""
    if campaign.state not in SEND_PROGRESS_STATES:
        return None
    Status = OutboxMessage.Status
    counts = dict(
        OutboxMessage.objects.filter(campaign_recipient__campaign=campaign).values_list("status").annotate(n=Count("id")).order_by()
    )
    total = max(campaign.recipient_count, sum(counts.values()))
    sent = counts.get(Status.SENT, 0)
    failed = counts.get(Status.FAILED, 0) + counts.get(Status.SUPPRESSED, 0) + counts.get(Status.CANCELLED, 0)
    return {
        "total": total,
        "sent": sent,
        "failed": failed,
        "left": total - sent - failed,
        "percent": round(100 * (sent + failed) / total) if total else 0,
    }


def fanout_progress(campaign: Campaign) -> dict | None:
    """Chunks of messages created so far while the fan-out runs (None otherwise)."""
    if campaign.fanout != Campaign.Fanout.RUNNING:
        return None
    chunks = FanoutChunk.objects.filter(campaign=campaign).aggregate(total=Count("id"), done=Count("id", filter=Q(done=True)))
    if not chunks["total"]:
        return None
    return {**chunks, "percent": round(100 * chunks["done"] / chunks["total"])}


# What happened to each recipient. The stored status only says whether the contact is in
# (queued), waiting for the A/B winner (holdout) or left out (skipped): the fan-out never
# rewrites a recipient row (one UPDATE per row cost a third of a million-recipient fan-out),
# so an included recipient's status is its outbox message's — sent, failed, cancelled… —
# and "queued" until that message is created.
RecipientStatus = CampaignRecipient.Status
RECIPIENT_STATUSES: dict[str, str] = {
    OutboxMessage.Status.QUEUED: OutboxMessage.Status.QUEUED.label,
    RecipientStatus.HOLDOUT: RecipientStatus.HOLDOUT.label,
    OutboxMessage.Status.SENDING: OutboxMessage.Status.SENDING.label,
    OutboxMessage.Status.SENT: OutboxMessage.Status.SENT.label,
    OutboxMessage.Status.FAILED: OutboxMessage.Status.FAILED.label,
    OutboxMessage.Status.CANCELLED: OutboxMessage.Status.CANCELLED.label,
    OutboxMessage.Status.SUPPRESSED: OutboxMessage.Status.SUPPRESSED.label,
    RecipientStatus.SKIPPED: RecipientStatus.SKIPPED.label,
}


def recipient_status() -> Case:
    return Case(
        When(status=RecipientStatus.SKIPPED, then=Value(RecipientStatus.SKIPPED)),
        When(status=RecipientStatus.HOLDOUT, then=Value(RecipientStatus.HOLDOUT)),
        When(message__status__isnull=False, then=F("message__status")),
        default=Value(OutboxMessage.Status.QUEUED),
        output_field=CharField(),
    )


def campaign_recipients(campaign: Campaign, *, status: str | None = None, skip_reason: str | None = None) -> QuerySet[CampaignRecipient]:
    """The campaign's audience as recorded at the fan-out, with each contact's message and
    `delivery_status` (see RECIPIENT_STATUSES), which `status` filters on."""
    rows = (
        CampaignRecipient.objects.filter(campaign=campaign)
        .select_related("contact", "variant", "message")
        .annotate(delivery_status=recipient_status())
        .order_by("id")
    )
    if status:
        rows = rows.filter(delivery_status=status)
    if skip_reason:
        rows = rows.filter(skip_reason=skip_reason)
    return rows


def recipient_counts(campaign: Campaign) -> dict[str, int]:
    """Recipients per status as `campaign_recipients` derives it (sent, failed, skipped…)."""
    rows = (
        CampaignRecipient.objects.filter(campaign=campaign)
        .annotate(delivery_status=recipient_status())
        .values_list("delivery_status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return dict(rows)


def pending_approval() -> QuerySet[Campaign]:
    return Campaign.objects.filter(state=State.PENDING_APPROVAL).select_related("created_by", "topic", "template_version__template")


def calendar_campaigns(*, start: datetime, end: datetime, channel: str = "", topic: int | None = None) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.filter(state__in=CALENDAR_STATES, send_at__gte=start, send_at__lt=end).select_related("topic")
    if channel:
        campaigns = campaigns.filter(channel=channel)
    if topic:
        campaigns = campaigns.filter(topic_id=topic)
    return campaigns.order_by("send_at", "pk")


def scheduled_other_sends(*, start: datetime, end: datetime, channel: str = "", topic: int | None = None):
    """Automation and other scheduled sends (not campaigns), counted per day, for the calendar."""
    messages = OutboxMessage.objects.filter(
        scheduled_at__gte=start, scheduled_at__lt=end, campaign_recipient__isnull=True, metadata__has_key=AUTOMATION_KEY
    )
    if channel:
        messages = messages.filter(channel=channel)
    if topic:
        messages = messages.filter(topic_id=topic)
    return (
        messages.annotate(automation=KeyTextTransform(AUTOMATION_KEY, "metadata"))
        .values("scheduled_at__date", "automation")
        .annotate(n=Count("id"))
        .order_by("scheduled_at__date")
    )


def automations_by_id(ids) -> dict[int, Automation]:
    """The automations the calendar's other sends came from, by id (one query)."""
    return Automation.objects.only("pk", "name", "trigger_type", "trigger").in_bulk(list(ids))


EVENT_KINDS = {
    "delivered": DeliveryEvent.Kind.DELIVERED,
    "opens": DeliveryEvent.Kind.OPENED,
    "clicks": DeliveryEvent.Kind.CLICKED,
    "unsubscribes": DeliveryEvent.Kind.UNSUBSCRIBED,
    "bounces": DeliveryEvent.Kind.BOUNCED,
    "complaints": DeliveryEvent.Kind.COMPLAINED,
}


# Opens and clicks are people's: a hit flagged automated (a prefetch seconds after sending,
# a mail gateway's link scanner, an image proxy) proves delivery but is nobody reading, as in
# the analytics rollup and the A/B winner (messaging.delivery.tracking.automated_reason).
HUMAN = Q(is_automated=False)


def _message_figures(campaign: Campaign) -> list[dict]:
    """The campaign's messages by (status, variant label, template version): how many, and
    how many of them were delivered, opened… (distinct messages per kind of event). A message
    has one status, one variant and one version, so these add up to the campaign's, each
    variant's and each language's figures."""

    def only(name: str, kind: str) -> Q:
        if name == "opens":  # a click is an open too (images blocked)
            return Q(events__kind__in=[kind, DeliveryEvent.Kind.CLICKED], events__is_automated=False)
        if name == "clicks":
            return Q(events__kind=kind, events__is_automated=False)
        return Q(events__kind=kind)

    return list(
        OutboxMessage.objects.filter(campaign_recipient__campaign=campaign)
        .values("status", label=F("campaign_recipient__variant__label"), version=_version_of())
        .annotate(
            n=Count("pk", distinct=True),  # distinct: a message's events repeat it in the join
            events_seen=Count("events"),  # of any kind: a language with events has a row
            **{name: Count("pk", distinct=True, filter=only(name, kind)) for name, kind in EVENT_KINDS.items()},
        )
        .order_by()
    )


def _version_of(prefix: str = "") -> Coalesce:
    """The template version a message was rendered from: metadata["template_version"] once
    rendered, chosen by the fan-out in metadata["render"]["version"] before."""
    metadata = f"{prefix}metadata"  # KT() cannot cross a relation: KeyTextTransform can
    return Coalesce(KeyTextTransform("template_version", metadata), KeyTextTransform("version", KeyTransform(DEFERRED_RENDER, metadata)))


def _version_id(value) -> int | None:  # JSON text on PostgreSQL, a number on SQLite
    return None if value is None else parse_id(str(value))


def _add(into: dict, key, figures: dict) -> None:
    row = into.setdefault(key, dict.fromkeys(figures, 0))
    for name, value in figures.items():
        row[name] += value


def _language_rows(sent: dict, figures: dict) -> list[dict]:
    """Per language sent: the locale of the template variant each message was rendered from
    (`sent` and `figures` are keyed by template version), so a contact who changes her
    language later still counts under the one she was sent."""
    ids = {_version_id(vid) for vid in (*sent, *figures)} - {None}
    locales = dict(TemplateVersion.objects.filter(pk__in=ids).values_list("pk", "template__locale"))
    rows: dict[str, dict] = {}
    for vid in {*sent, *figures}:
        locale = locales.get(_version_id(vid), "")
        row = rows.setdefault(locale, {"locale": locale, "sent": 0, **dict.fromkeys(EVENT_KINDS, 0)})
        row["sent"] += sent.get(vid, 0)
        for name in EVENT_KINDS:
            row[name] += figures.get(vid, {}).get(name, 0)
    return sorted(rows.values(), key=lambda row: row["locale"])


@prefer_index_scans()
def campaign_report(campaign: Campaign) -> dict:
    """Totals, per variant, per link and per language. Opens count a click as an open (images
    blocked); opens and clicks count people only (automated hits are left out).

    The campaign's messages and their events are read in one query (_message_figures), from
    the campaign's recipients through indexes (prefer_index_scans), never through the whole
    outbox or event table."""
    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    skipped = dict(recipients.filter(status=CampaignRecipient.Status.SKIPPED).values_list("skip_reason").annotate(n=Count("id")).order_by())
    statuses: dict[str, int] = {}
    per_variant_sent: dict[str | None, int] = {}
    sent_per_version: dict = {}
    totals = dict.fromkeys(EVENT_KINDS, 0)
    per_variant_events: dict[str | None, dict] = {}
    events_per_version: dict = {}
    for row in _message_figures(campaign):
        status, label, version, n = row.pop("status"), row.pop("label"), row.pop("version"), row.pop("n")
        statuses[status] = statuses.get(status, 0) + n
        if status == OutboxMessage.Status.SENT:
            per_variant_sent[label] = per_variant_sent.get(label, 0) + n
            sent_per_version[version] = sent_per_version.get(version, 0) + n
        if row.pop("events_seen"):  # a version nothing was sent in nor happened to has no row
            _add(per_variant_events, label, row)
            _add(events_per_version, version, row)
        for name in EVENT_KINDS:
            totals[name] += row[name]
    conversions = CampaignConversion.objects.filter(campaign=campaign)
    money = conversions.aggregate(n=Count("id"), revenue=Sum("revenue"))
    per_variant_money = {
        row["variant__label"]: row
        for row in conversions.values("variant__label").annotate(n=Count("id"), revenue=Sum("revenue")).order_by()
    }
    variants = []
    for variant in campaign.variants.order_by("label"):
        figures = per_variant_events.get(variant.label, {})
        sent = per_variant_sent.get(variant.label, 0)
        variants.append(
            {
                "label": variant.label,
                "subject": variant.subject,
                "is_winner": campaign.winner_id == variant.pk,
                "sent": sent,
                **{name: figures.get(name, 0) for name in EVENT_KINDS},
                "open_rate": round(100 * figures.get("opens", 0) / sent, 1) if sent else 0.0,
                "click_rate": round(100 * figures.get("clicks", 0) / sent, 1) if sent else 0.0,
                "conversions": per_variant_money.get(variant.label, {}).get("n", 0),
                "revenue": per_variant_money.get(variant.label, {}).get("revenue") or 0,
            }
        )
    link_clicks = list(
        _events_of(campaign)
        .filter(HUMAN, kind=DeliveryEvent.Kind.CLICKED)
        .values("payload__link")
        .annotate(clicks=Count("id"), unique=Count("message", distinct=True))
    )
    urls = dict(
        TrackedLink.objects.filter(pk__in=[row["payload__link"] for row in link_clicks if row["payload__link"]]).values_list("pk", "url")
    )
    links = sorted(
        ({"url": urls.get(row["payload__link"], "?"), "clicks": row["clicks"], "unique": row["unique"]} for row in link_clicks),
        key=lambda row: -row["clicks"],
    )
    sent = statuses.get(OutboxMessage.Status.SENT, 0)
    # Events older than the retention age may be gone (messaging.delivery.retention): the figures
    # above count the events kept, so the report says so rather than pass a drop for the truth.
    kept_since = events_kept_since()
    pruned = (
        kept_since is not None and OutboxMessage.objects.filter(pk__in=recipients.values("message_id"), created_at__lt=kept_since).exists()
    )
    return {
        "events_kept_since": kept_since if pruned else None,
        "recipients": recipients.exclude(status=CampaignRecipient.Status.SKIPPED).count(),
        "skipped": skipped,
        "queued": statuses.get(OutboxMessage.Status.QUEUED, 0) + statuses.get(OutboxMessage.Status.SENDING, 0),
        "sent": sent,
        "failed": statuses.get(OutboxMessage.Status.FAILED, 0),
        "suppressed": statuses.get(OutboxMessage.Status.SUPPRESSED, 0),
        "cancelled": statuses.get(OutboxMessage.Status.CANCELLED, 0),
        **totals,
        "conversions": money["n"],
        "revenue": money["revenue"] or 0,
        "variants": variants,
        "links": links,
        "languages": _language_rows(sent_per_version, events_per_version),
    }


def _events_of(campaign: Campaign) -> QuerySet[DeliveryEvent]:
    """The campaign's delivery events, found from its recipients' message ids (one index probe
    each) without joining the outbox, for figures that need nothing of the message."""
    return DeliveryEvent.objects.filter(message_id__in=CampaignRecipient.objects.filter(campaign=campaign).values("message_id"))


@prefer_index_scans()
def engagement_timeline(campaign: Campaign) -> list[dict]:
    """Opens and clicks per hour, for the report's chart."""
    return list(
        _events_of(campaign)
        .filter(HUMAN, kind__in=[DeliveryEvent.Kind.OPENED, DeliveryEvent.Kind.CLICKED])
        .annotate(hour=TruncHour("occurred_at"))
        .values("hour", "kind")
        .annotate(n=Count("id"))
        .order_by("hour")
    )
