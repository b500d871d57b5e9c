"""Read-side queries for the messaging app."""

import datetime
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connections, transaction
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from messaging.models import (
    Channel,
    ConsentRecord,
    Contact,
    DeliveryEvent,
    OutboxMessage,
    Subscription,
    Suppression,
    Topic,
    WebhookEndpoint,
)


def has_consent(*, contact: Contact, topic: Topic, channel: str = Channel.EMAIL) -> bool:
    """Marketing may go out only with an explicit, current subscription."""
    if topic.kind == Topic.Kind.TRANSACTIONAL:
        return True
    return Subscription.objects.filter(contact=contact, topic=topic, channel=channel, status=Subscription.Status.SUBSCRIBED).exists()


def is_suppressed(*, address: str, channel: str) -> bool:
    return Suppression.objects.filter(address__in=Suppression.keys_for([address]), channel=channel).exists()


def start_of_today() -> datetime.datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


EXACT_UP_TO = 10_000  # a figure above this is the planner's estimate on PostgreSQL ("about")


@dataclass(frozen=True)
class Figure:
    """A count for a page: exact, or (`is_estimate`) the planner's estimate of a large one."""

    value: int
    is_estimate: bool = False

    def __int__(self) -> int:
        return self.value


def planned_rows(queryset: QuerySet) -> int | None:
    """The PostgreSQL planner's estimate of how many rows a queryset returns (filters and all,
    from the table statistics autovacuum keeps): one EXPLAIN, nothing read. None elsewhere."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().values("pk").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def counted(queryset: QuerySet, *, exact_up_to: int | None = None) -> Figure:
    """How many rows, without reading millions: counts at most `exact_up_to` + 1 rows (a COUNT
    over a LIMIT); past that, on PostgreSQL, the planner's estimate (never below what was
    counted); elsewhere the full count."""
    exact_up_to = EXACT_UP_TO if exact_up_to is None else exact_up_to
    seen = queryset.order_by()[: exact_up_to + 1].count()
    if seen <= exact_up_to:
        return Figure(seen)
    estimate = planned_rows(queryset)
    if estimate is None:
        return Figure(queryset.count())
    return Figure(max(estimate, seen), is_estimate=True)


@contextmanager
def prefer_index_scans(*, using: str = "default") -> Iterator[None]:
    """Plan the queries inside for rows that are few or read from an index (one campaign's
    recipients and their events out of millions, a month of the outbox): PostgreSQL's
    default random_page_cost (4, a spinning disk's) makes 20,000 index probes look dearer
    than reading a whole table, so it scans a million events to find a few thousand; 1.1 is
    the usual figure for SSDs and a warm cache. JIT is left off: compiling an aggregate costs
    ~50 ms, more than these queries take. Set for this transaction only and put back on the
    way out (a rollback undoes it too). No-op on other databases."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('random_page_cost'), current_setting('jit'),"
                " set_config('random_page_cost', '1.1', true), set_config('jit', 'off', true)"
            )
            cost, jit = cursor.fetchone()[:2]
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('random_page_cost', %s, true), set_config('jit', %s, true)", [cost, jit])


def distinct_values(queryset: QuerySet, field: str) -> list:
    """The distinct non-null values of a column, sorted. On PostgreSQL, for an indexed column
    of an unfiltered queryset, a loose index scan (a recursive query that jumps from one
    value to the next in the index: one probe per distinct value) instead of SELECT DISTINCT,
    which reads every row: a filter listing twenty verbs of 300,000 audit entries. Anywhere
    else the plain SELECT DISTINCT."""
    model, connection = queryset.model, connections[queryset.db]
    column = model._meta.get_field(field).column
    if connection.vendor != "postgresql" or queryset.query.where or not _leads_an_index(model, column):
        return list(queryset.exclude(**{f"{field}__isnull": True}).order_by(field).values_list(field, flat=True).distinct())
    table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE value_list(value) AS ("
        f" (SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY {column} LIMIT 1)"
        f" UNION ALL SELECT (SELECT {column} FROM {table} WHERE {column} > value_list.value ORDER BY {column} LIMIT 1)"
        f" FROM value_list WHERE value_list.value IS NOT NULL"
        f") SELECT value FROM value_list WHERE value IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def _leads_an_index(model, column: str) -> bool:
    """Whether some index of the model starts with this column (db_index or Meta.indexes)."""
    for field in model._meta.concrete_fields:
        if field.column == column and (field.db_index or field.unique):
            return True
    return any(index.fields and model._meta.get_field(index.fields[0].lstrip("-")).column == column for index in model._meta.indexes)


def audience_figures() -> dict[str, Figure]:
    """The dashboard's figures: exact while small, the planner's estimate for big tables (a
    full COUNT over a million contacts costs a tenth of a second on every page view)."""
    today = start_of_today()
    return {
        "contacts": counted(Contact.objects.active()),
        "contacts_today": counted(Contact.objects.filter(created_at__gte=today)),
        "subscriptions": counted(Subscription.objects.filter(status=Subscription.Status.SUBSCRIBED)),
        "consents_today": counted(ConsentRecord.objects.filter(created_at__gte=today)),
        "withdrawals_today": counted(ConsentRecord.objects.filter(created_at__gte=today, action=ConsentRecord.Action.WITHDRAWN)),
        "suppressions": counted(Suppression.objects.all()),
    }


def consents_per_day(*, days: int = 14) -> QuerySet:
    since = start_of_today() - datetime.timedelta(days=days - 1)
    return (
        ConsentRecord.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "action")
        .annotate(total=Count("id"))
        .order_by("day")
    )


def subscribers_per_topic() -> list[tuple[Topic, Figure]]:
    """Topics with their current subscribers (exact while small, else estimated), in the
    topics' order; topics without any are left out. Two short queries a topic (there are a
    handful) instead of grouping every subscription."""
    found = []
    for topic in Topic.objects.order_by("position", "name"):
        figure = counted(Subscription.objects.filter(topic=topic, status=Subscription.Status.SUBSCRIBED))
        if figure.value:
            found.append((topic, figure))
    return found


@prefer_index_scans()
def message_counts(*, since: datetime.datetime | None = None, until: datetime.datetime | None = None, channel: str | None = None) -> dict:
    """Outbox messages created in [since, until), by status and by channel, as they stand now."""
    return _message_counts(since=since, until=until, channel=channel)


def _message_counts(*, since: datetime.datetime | None, until: datetime.datetime | None, channel: str | None) -> dict:
    messages = OutboxMessage.objects.all()
    if since:
        messages = messages.filter(created_at__gte=since)
    if until:
        messages = messages.filter(created_at__lt=until)
    if channel:
        messages = messages.filter(channel=channel)
    by_status = dict.fromkeys(OutboxMessage.Status.values, 0)
    by_channel: dict[str, dict] = {}
    # COUNT(*), not COUNT(id): the period's rows are counted from outbox_created_channel_status
    # alone (an index-only scan once vacuum has marked the pages), never visiting the table
    for row in messages.values("channel", "status").annotate(total=Count("*")).order_by():
        by_status[row["status"]] += row["total"]
        per_channel = by_channel.setdefault(row["channel"], {"total": 0, "by_status": dict.fromkeys(OutboxMessage.Status.values, 0)})
        per_channel["total"] += row["total"]
        per_channel["by_status"][row["status"]] += row["total"]
    return {"since": since, "until": until, "total": sum(by_status.values()), "by_status": by_status, "by_channel": by_channel}


@prefer_index_scans()
def message_stats(*, since: datetime.datetime | None = None, until: datetime.datetime | None = None, channel: str | None = None) -> dict:
    """Outbox totals by status and by channel (messages created in [since, until)), and the
    delivery events (delivered, opened, bounced…) that occurred in the same window."""
    events = DeliveryEvent.objects.all()
    if since:
        events = events.filter(occurred_at__gte=since)
    if until:
        events = events.filter(occurred_at__lt=until)
    if channel:
        events = events.filter(message__channel=channel)
    event_totals = dict.fromkeys(DeliveryEvent.Kind.values, 0)
    for row in events.values("kind").annotate(total=Count("id")).order_by():
        event_totals[row["kind"]] = row["total"]
    return {**_message_counts(since=since, until=until, channel=channel), "events": event_totals}


def webhook_endpoints_turned_off() -> QuerySet[WebhookEndpoint]:
    """Endpoints disabled after consecutive failures (not those a person switched off)."""
    return WebhookEndpoint.objects.filter(is_active=False, disabled_at__isnull=False)
