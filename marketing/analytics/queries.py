"""Read-side selectors over the DailyStat rollup, plus the few live figures that are
cheap indexed counts (queue depth, throughput, provider health). Plain data out."""

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from marketing.models import DailyStat
from messaging.models import DeliveryAttempt, OutboxMessage, Provider

METRICS = (
    "queued",
    "sent",
    "failed",
    "suppressed",
    "cancelled",
    "delivered",
    "opened_unique",
    "opened_total",
    "clicked_unique",
    "clicked_total",
    "bounced",
    "complained",
    "unsubscribed",
    "replied",
    "conversions",
)
CENTS = Decimal("0.01")
BREAKDOWNS = ("channel", "provider", "topic", "campaign_id", "automation_id")
DIMENSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def is_dimension_id(value: str) -> bool:
    """A campaign or automation id a report can name and link to (`42`, `welcome`)."""
    return DIMENSION_ID.fullmatch(value) is not None


EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2999, 12, 31)


def reporting_day(value: date) -> None:
    """Validator for every date a report is asked for: far-off days mean nothing to a report
    and would overflow the day arithmetic (`0001-01-01` minus 29 days)."""
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValidationError(
            _("Pick a day between %(first)s and %(last)s.") % {"first": EARLIEST_DAY.isoformat(), "last": LATEST_DAY.isoformat()}
        )


@dataclass(frozen=True)
class Filters:
    """Which rollup rows a page, a chart, an export or the API looks at (days inclusive)."""

    since: date
    until: date
    channel: str = ""
    campaign_id: str = ""
    automation_id: str = ""

    @classmethod
    def last(cls, days: int = 30, **kwargs) -> "Filters":
        today = timezone.localdate()
        return cls(since=today - timedelta(days=days - 1), until=today, **kwargs)

    def days(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


def stat_rows(filters: Filters) -> QuerySet[DailyStat]:
    rows = DailyStat.objects.filter(day__gte=filters.since, day__lte=filters.until)
    for field in ("channel", "campaign_id", "automation_id"):
        if value := getattr(filters, field):
            rows = rows.filter(**{field: value})
    return rows


def _sums() -> dict:
    return {**{name: Sum(name, default=0) for name in METRICS}, "revenue": Sum("revenue", default=Decimal(0))}


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def with_rates(figures: dict[str, Any]) -> dict[str, Any]:
    """Rates a marketer reads: opens and clicks over delivered (over sent when the channel's
    providers report no deliveries), failures over sent."""
    sent, delivered = figures["sent"], figures["delivered"]
    base = delivered or sent
    return {
        **figures,
        "revenue": str(Decimal(figures["revenue"] or 0).quantize(CENTS)),
        "delivery_rate": _ratio(delivered, sent),
        "open_rate": _ratio(figures["opened_unique"], base),
        "click_rate": _ratio(figures["clicked_unique"], base),
        "click_to_open_rate": _ratio(figures["clicked_unique"], figures["opened_unique"]),
        "unsubscribe_rate": _ratio(figures["unsubscribed"], base),
        "bounce_rate": _ratio(figures["bounced"], sent),
        "complaint_rate": _ratio(figures["complained"], base),
        "conversion_rate": _ratio(figures["conversions"], figures["clicked_unique"]),
    }


def totals(filters: Filters) -> dict[str, Any]:
    return with_rates(stat_rows(filters).aggregate(**_sums()))


def per_day(filters: Filters) -> list[dict[str, Any]]:
    """One entry per day of the range, zeros where nothing happened."""
    found = {row["day"]: row for row in stat_rows(filters).values("day").annotate(**_sums()).order_by("day")}
    empty = {**dict.fromkeys(METRICS, 0), "revenue": Decimal(0)}
    return [with_rates({**empty, **found.get(day, {}), "day": day.isoformat()}) for day in filters.days()]


def breakdown(filters: Filters, *, by: str) -> list[dict[str, Any]]:
    """Totals per value of one dimension (channel, provider, topic, campaign, automation)."""
    if by not in BREAKDOWNS:
        raise ValueError(by)
    rows = stat_rows(filters)
    if by in ("campaign_id", "automation_id"):
        # Rows rolled up before ids were checked may hold anything ("a/b"): not a campaign.
        found = rows.exclude(**{by: ""}).values(by).annotate(**_sums()).order_by("-sent", by)
        return [with_rates(row) for row in found if is_dimension_id(row[by])]
    return [with_rates(row) for row in rows.values(by).annotate(**_sums()).order_by("-sent", by)]


def opens_heat(filters: Filters) -> list[list[int]]:
    """Human opens by weekday (Monday first) and local hour: 7 rows of 24."""
    grid = [[0] * 24 for _day in range(7)]
    for day, hours in stat_rows(filters).filter(opened_total__gt=0).values_list("day", "opens_by_hour"):
        for hour, count in enumerate(hours or ()):
            grid[day.weekday()][hour] += count
    return grid


# --- live, cheap -----------------------------------------------------------------------------------


def queue_figures(*, channel: str = "") -> dict[str, Any]:
    """Queue depth and throughput, counted live on indexed columns."""
    now = timezone.now()
    messages = OutboxMessage.objects.filter(channel=channel) if channel else OutboxMessage.objects.all()
    attempts = DeliveryAttempt.objects.filter(created_at__gte=now - timedelta(hours=1), outcome=DeliveryAttempt.Outcome.SENT)
    if channel:
        attempts = attempts.filter(message__channel=channel)
    last_hour = attempts.count()
    return {
        "queued": messages.filter(status=OutboxMessage.Status.QUEUED).count(),
        "due": messages.filter(status=OutboxMessage.Status.QUEUED, next_attempt_at__lte=now).count(),
        "sending": messages.filter(status=OutboxMessage.Status.SENDING).count(),
        "sent_last_hour": last_hour,
        "sent_last_15_minutes": attempts.filter(created_at__gte=now - timedelta(minutes=15)).count(),
        "per_minute": round(last_hour / 60, 2),
    }


def provider_health(*, channel: str = "") -> list[dict[str, Any]]:
    now = timezone.now()
    providers = Provider.objects.filter(channel=channel) if channel else Provider.objects.all()
    result = []
    for provider in providers.order_by("channel", "priority", "name"):
        resting = bool(provider.resting_until and provider.resting_until > now)
        if not provider.is_active:
            state = "inactive"
        elif resting:
            state = "resting"
        elif provider.consecutive_failures:
            state = "degraded"
        else:
            state = "healthy"
        total = provider.sent_count + provider.failed_count
        result.append(
            {
                "id": provider.pk,
                "name": provider.name,
                "channel": provider.channel,
                "state": state,
                "consecutive_failures": provider.consecutive_failures,
                "resting_until": provider.resting_until,
                "last_success_at": provider.last_success_at,
                "last_failure_at": provider.last_failure_at,
                "sent": provider.sent_count,
                "failed": provider.failed_count,
                "success_rate": _ratio(provider.sent_count, total) if total else None,
            }
        )
    return result


def overview(filters: Filters) -> dict[str, Any]:
    """What the dashboard and GET /api/v1/analytics/overview/ show."""
    today = timezone.localdate()
    return {
        "since": filters.since,
        "until": filters.until,
        "channel": filters.channel,
        "today": totals(Filters(since=today, until=today, channel=filters.channel)),
        "range": totals(filters),
        "by_channel": breakdown(filters, by="channel"),
        "queue": queue_figures(channel=filters.channel),
        "providers": provider_health(channel=filters.channel),
        "computed_at": stat_rows(filters).order_by("-computed_at").values_list("computed_at", flat=True).first(),
    }
