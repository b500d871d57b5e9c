"""The analytics table "Messages by status and channel" for a range of days.

A year of outbox rows is millions: counting them on each page view reads as many index
entries. The days the rollups hold for good (before `counted_before`) are summed from
DailyStat, a few rows a day; only the days the rollups still recompute are counted from the
outbox (messaging.queries.message_counts). For a settled day, a message neither sent, failed,
suppressed nor cancelled when it was rolled up is shown as queued (scheduled, or waiting for
a retry).
"""

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from marketing.analytics.queries import Filters, stat_rows
from marketing.analytics.rollups import counted_before, day_start
from messaging.models import OutboxMessage
from messaging.queries import message_counts

Status = OutboxMessage.Status
SETTLED = (Status.SENT, Status.FAILED, Status.SUPPRESSED, Status.CANCELLED)


def message_status_table(filters: Filters) -> dict:
    """{"total", "by_status", "by_channel": {channel: {"total", "by_status"}}} over the range."""
    start, end = day_start(filters.since), day_start(filters.until + timedelta(days=1))
    settled = counted_before()
    cut = min(max(settled, start), end) if settled is not None else start
    figures = message_counts(since=cut, until=end, channel=filters.channel or None) if cut < end else _empty()
    if cut > start:
        rolled = Filters(since=filters.since, until=timezone.localtime(cut).date() - timedelta(days=1), channel=filters.channel)
        sums = {name: Sum(name, default=0) for name in ("queued", *SETTLED)}
        for row in stat_rows(rolled).values("channel").annotate(**sums).order_by():
            counts = {status: row[status] for status in SETTLED}
            counts[Status.QUEUED] = row["queued"] - sum(counts.values())  # DailyStat.queued: every message created
            if row["queued"]:  # rows of orders and events alone hold no message
                _add(figures, row["channel"], counts)
    return figures


def _empty() -> dict:
    return {"total": 0, "by_status": dict.fromkeys(Status.values, 0), "by_channel": {}}


def _add(figures: dict, channel: str, counts: dict[str, int]) -> None:
    per_channel = figures["by_channel"].setdefault(channel, {"total": 0, "by_status": dict.fromkeys(Status.values, 0)})
    for status, n in counts.items():
        figures["by_status"][status] += n
        per_channel["by_status"][status] += n
        figures["total"] += n
        per_channel["total"] += n
