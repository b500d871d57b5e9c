"""The rollup: recompute DailyStat rows for a range of local days from raw rows.

Each run deletes the range's rows and inserts fresh ones in one transaction, so running
twice changes nothing and events that arrived late (a webhook delayed by hours, an order
recorded the next morning) are counted by the next run that covers their day. The
scheduled task recomputes the last two days every 15 minutes; `backfill_analytics`
recomputes any range.
"""

import logging
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, ExtractHour, TruncDate
from django.utils import timezone

from marketing.analytics.queries import is_dimension_id
from marketing.models import DailyStat, Order
from messaging.delivery.retention import events_kept_since
from messaging.metadata import AUTOMATION_KEY, CAMPAIGN_KEY, LEGACY_AUTOMATION_KEY, LEGACY_CAMPAIGN_KEY
from messaging.models import DeliveryEvent, OutboxMessage

logger = logging.getLogger(__name__)

ATTRIBUTION_WINDOW = timedelta(days=5)  # an order within 5 days after a click is that click's
DIMENSIONS = ("channel", "provider", "topic", "campaign_id", "automation_id")
MESSAGE_COUNTS = ("queued", "sent", "failed", "suppressed", "cancelled")
EVENT_COUNTS = ("delivered", "opened_total", "clicked_total", "bounced", "complained", "unsubscribed", "replied")
Key = tuple[date, str, str, str, str, str]

Kind, Status = DeliveryEvent.Kind, OutboxMessage.Status


def day_start(day: date) -> datetime:
    """Midnight of a local day (settings.TIME_ZONE) as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _metadata_id(key: str, legacy: str, field: str) -> Coalesce:
    return Coalesce(KeyTextTransform(key, field), KeyTextTransform(legacy, field))


def _dimension_columns(prefix: str = "") -> dict:
    """The rollup's dimensions, read from a message (`prefix` reaches it from an event).
    Campaign and automation ids come from the message's metadata, under the keys campaigns
    and automations write (messaging.delivery.outbox CAMPAIGN_KEY, AUTOMATION_KEY); rows stored under
    the old `campaign_id`/`automation_id` keys still count. A message without them rolls up
    under ""."""
    return {
        "d_channel": F(f"{prefix}channel"),
        "d_provider": F(f"{prefix}provider__name"),
        "d_topic": F(f"{prefix}topic__key"),
        "d_campaign": _metadata_id(CAMPAIGN_KEY, LEGACY_CAMPAIGN_KEY, f"{prefix}metadata"),
        "d_automation": _metadata_id(AUTOMATION_KEY, LEGACY_AUTOMATION_KEY, f"{prefix}metadata"),
    }


DIMENSION_NAMES = tuple(_dimension_columns())


def _text(value, limit: int) -> str:
    # A JSON null in metadata (SQLite hands it back as "null") means "none", like a missing key.
    return "" if value is None or value == "null" else str(value)[:limit]


def _id(value) -> str:
    """A campaign or automation id from metadata: a short slug, else none. Metadata written
    before the API refused these keys may hold anything ("a/b" broke the report links)."""
    text = _text(value, 65)
    return text if is_dimension_id(text) else ""


def _key(day: date, row: dict) -> Key:
    return (
        day,
        _text(row["d_channel"], 16),
        _text(row["d_provider"], 100),
        _text(row["d_topic"], 100),
        _id(row["d_campaign"]),
        _id(row["d_automation"]),
    )


def _message_counts(start: datetime, end: datetime) -> list[dict]:
    return list(
        OutboxMessage.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"), **_dimension_columns())
        .values("day", *DIMENSION_NAMES)
        .annotate(
            queued=Count("id"),
            sent=Count("id", filter=Q(status=Status.SENT)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            suppressed=Count("id", filter=Q(status=Status.SUPPRESSED)),
            cancelled=Count("id", filter=Q(status=Status.CANCELLED)),
        )
        .order_by()
    )


def _event_counts(start: datetime, end: datetime) -> list[dict]:
    human = Q(is_automated=False)
    return list(
        DeliveryEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .annotate(day=TruncDate("occurred_at"), **_dimension_columns("message__"))
        .values("day", *DIMENSION_NAMES)
        .annotate(
            delivered=Count("id", filter=Q(kind=Kind.DELIVERED)),
            opened_total=Count("id", filter=Q(kind=Kind.OPENED) & human),
            clicked_total=Count("id", filter=Q(kind=Kind.CLICKED) & human),
            bounced=Count("id", filter=Q(kind=Kind.BOUNCED)),
            complained=Count("id", filter=Q(kind=Kind.COMPLAINED)),
            unsubscribed=Count("id", filter=Q(kind=Kind.UNSUBSCRIBED)),
            replied=Count("id", filter=Q(kind=Kind.REPLIED)),
        )
        .order_by()
    )


def _opens_by_hour(start: datetime, end: datetime) -> list[dict]:
    return list(
        DeliveryEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end, kind=Kind.OPENED, is_automated=False)
        .annotate(day=TruncDate("occurred_at"), hour=ExtractHour("occurred_at"), **_dimension_columns("message__"))
        .values("day", "hour", *DIMENSION_NAMES)
        .annotate(total=Count("id"))
        .order_by()
    )


def _first_touches(kind: str, start: datetime, end: datetime) -> list[dict]:
    """Messages whose first human `kind` event (open or click) happened in [start, end),
    counted on that event's day: unique opens/clicks that add up across days."""
    human = DeliveryEvent.objects.filter(kind=kind, is_automated=False)
    first = human.filter(message=OuterRef("pk")).order_by("occurred_at").values("occurred_at")[:1]
    touched = human.filter(occurred_at__gte=start, occurred_at__lt=end, message__isnull=False).values("message_id")
    return list(
        OutboxMessage.objects.filter(pk__in=touched)
        .annotate(first_at=Subquery(first))
        .filter(first_at__gte=start, first_at__lt=end)
        .annotate(day=TruncDate("first_at"), **_dimension_columns())
        .values("day", *DIMENSION_NAMES)
        .annotate(total=Count("id"))
        .order_by()
    )


def _attributed_orders(start: datetime, end: datetime) -> list[tuple[Key, Decimal]]:
    """Paid orders placed in [start, end), each credited to the contact's last human click
    in the five days before it (last touch). Orders without such a click are not attributed."""
    orders = list(
        Order.objects.filter(status__in=Order.REVENUE_STATUSES, placed_at__gte=start, placed_at__lt=end).values_list(
            "contact_id", "placed_at", "amount"
        )
    )
    if not orders:
        return []
    clicks_by_contact: dict[int, list[tuple[datetime, dict]]] = defaultdict(list)
    clicks = (
        DeliveryEvent.objects.filter(
            kind=Kind.CLICKED,
            is_automated=False,
            message__contact_id__in={contact_id for contact_id, _at, _amount in orders},
            occurred_at__gte=start - ATTRIBUTION_WINDOW,
            occurred_at__lt=end,
        )
        .annotate(contact_id=F("message__contact_id"), **_dimension_columns("message__"))
        .values("contact_id", "occurred_at", *DIMENSION_NAMES)
        .order_by("occurred_at", "id")
    )
    for click in clicks:
        clicks_by_contact[click["contact_id"]].append((click["occurred_at"], click))
    attributed = []
    for contact_id, placed_at, amount in orders:
        touches = [click for at, click in clicks_by_contact.get(contact_id, ()) if placed_at - ATTRIBUTION_WINDOW <= at <= placed_at]
        if touches:
            attributed.append((_key(timezone.localtime(placed_at).date(), touches[-1]), amount))
    return attributed


def compute_rows(*, first_day: date, last_day: date) -> list[DailyStat]:
    """Fresh (unsaved) DailyStat rows for the local days first_day..last_day."""
    start, end = day_start(first_day), day_start(last_day + timedelta(days=1))
    rows: dict[Key, DailyStat] = {}

    def row(key: Key) -> DailyStat:
        if key not in rows:
            rows[key] = DailyStat(**dict(zip(("day", *DIMENSIONS), key, strict=True)), opens_by_hour=[0] * 24, revenue=Decimal(0))
        return rows[key]

    for found in _message_counts(start, end):
        stat = row(_key(found["day"], found))
        for name in MESSAGE_COUNTS:
            setattr(stat, name, found[name])
    for found in _event_counts(start, end):
        stat = row(_key(found["day"], found))
        for name in EVENT_COUNTS:
            setattr(stat, name, found[name])
    for found in _opens_by_hour(start, end):
        row(_key(found["day"], found)).opens_by_hour[found["hour"]] += found["total"]
    for field, kind in (("opened_unique", Kind.OPENED), ("clicked_unique", Kind.CLICKED)):
        for found in _first_touches(kind, start, end):
            setattr(row(_key(found["day"], found)), field, found["total"])
    for key, amount in _attributed_orders(start, end):
        stat = row(key)
        stat.conversions += 1
        stat.revenue += amount
    return [stat for stat in rows.values() if first_day <= stat.day <= last_day]


def roll_up(*, first_day: date, last_day: date) -> int:
    """Replace the rows of first_day..last_day with freshly computed ones, in one
    transaction. Returns the number of rows written."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                fresh = compute_rows(first_day=first_day, last_day=last_day)
                DailyStat.objects.filter(day__gte=first_day, day__lte=last_day).delete()
                DailyStat.objects.bulk_create(fresh, batch_size=500)
        except IntegrityError:
            # Another run replaced the same days at the same moment: its rows are as fresh.
            if attempt == 2:
                raise
            logger.warning("analytics rollup of %s..%s collided with a concurrent run; retrying", first_day, last_day)
        else:
            logger.info("analytics rollup of %s..%s: %d rows", first_day, last_day, len(fresh))
            return len(fresh)
    return 0  # unreachable


def counted_before() -> datetime | None:
    """Every delivery event before this moment is in DailyStat for good: the start of the day
    before the newest rolled-up day (the run that wrote that day covered the one before it,
    whole). None while nothing was ever rolled up. Registered with messaging's retention
    (marketing.wiring), so no event is pruned before the rollups have counted it."""
    newest = DailyStat.objects.aggregate(newest=Max("day"))["newest"]
    return day_start(newest - timedelta(days=1)) if newest is not None else None


def roll_up_recent(*, days: int = 2, today: date | None = None) -> int:
    """The scheduled run: recompute today and the days before it (late events land there)."""
    today = today or timezone.localdate()
    return roll_up(first_day=today - timedelta(days=max(days, 1) - 1), last_day=today)


def first_recomputable_day() -> date | None:
    """The first day whose delivery events are all still there (None: every day's are).
    Days before it lost events to the retention policy (messaging.delivery.retention): their
    rows are the only count left, and recomputing them would replace it with fewer."""
    kept_since = events_kept_since()
    return None if kept_since is None else timezone.localtime(kept_since).date() + timedelta(days=1)


def backfill(*, first_day: date, last_day: date, chunk_days: int = 7) -> int:
    """Recompute a long range a week at a time (short transactions, bounded memory). Days
    whose events the retention policy may have deleted keep their rows."""
    if (first_kept := first_recomputable_day()) is not None and first_day < first_kept:
        logger.warning("analytics backfill: days before %s keep their rows (their events may have been pruned)", first_kept)
        first_day = first_kept
    written, day = 0, first_day
    while day <= last_day:
        chunk_end = min(day + timedelta(days=chunk_days - 1), last_day)
        written += roll_up(first_day=day, last_day=chunk_end)
        day = chunk_end + timedelta(days=1)
    return written
