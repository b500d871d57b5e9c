"""What /metrics shows Prometheus: a prometheus_client Collector that reads the database
at scrape time. No counter lives in a process (they would diverge between web workers and
cluster processes and reset on every restart): every figure is read from the rows, the
provider counters or the shared cache, so any process answers the same.

Each scrape costs a fixed handful of queries, whatever the size of the outbox or the
number of providers or campaigns (tests/test_observability.py counts them):

- outbox messages by channel and status: one GROUP BY served by the (channel, status)
  index (an index-only scan on PostgreSQL, a covering index on SQLite);
- the oldest due message: one probe per priority of the outbox_queued index (priority, next_attempt_at);
- providers: one query over a table of a few rows;
- webhook deliveries pending or failed: one GROUP BY on the (endpoint, status, id) index;
- the cluster heartbeat: one query on django-q2's small success table;
- rate-limit hits: one read of the shared cache (messaging.delivery.throttle);
- higher apps' sources, registered with `register_metric_source` (marketing adds the
  campaigns' fan-out progress from marketing/wiring.py): one query each.

Nothing here names a contact, an address, a secret or any message content.
"""

import math
from collections.abc import Callable, Iterable, Iterator

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from messaging import health
from messaging.delivery.throttle import rate_limit_hits
from messaging.models import Channel, OutboxMessage, Provider, WebhookDelivery

MetricSource = Callable[[], Iterable[Metric]]
METRIC_SOURCES: list[MetricSource] = []


def register_metric_source(source: MetricSource) -> None:
    """Add a function yielding metric families to every scrape (higher apps, from wiring.py)."""
    if source not in METRIC_SOURCES:
        METRIC_SOURCES.append(source)


def outbox_metrics() -> Iterator[Metric]:
    counts = {(channel, status): 0 for channel in Channel.values for status in OutboxMessage.Status.values}
    rows = OutboxMessage.objects.order_by().values_list("channel", "status").annotate(total=Count("*"))
    for channel, status, total in rows:
        counts[(channel, status)] = total
    family = GaugeMetricFamily(
        "mailroom_outbox_messages", "Outbox messages by channel and status (queued, sending, sent, failed…).", labels=["channel", "status"]
    )
    for (channel, status), total in sorted(counts.items()):
        family.add_metric([channel, status], total)
    yield family
    oldest = health.oldest_due_at()
    yield GaugeMetricFamily(
        "mailroom_outbox_oldest_due_age_seconds",
        "How long the longest-waiting queued message has been due (0 when nothing is due): the queue's lag.",
        value=max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0,
    )


def provider_metrics() -> Iterator[Metric]:
    labels = ["provider", "channel", "kind"]
    sent = CounterMetricFamily("mailroom_provider_sent", "Messages a provider accepted.", labels=labels)
    failed = CounterMetricFamily("mailroom_provider_failed", "Send attempts a provider failed (temporary or permanent).", labels=labels)
    retries = CounterMetricFamily(
        "mailroom_provider_retries", "Temporary failures whose message was queued again for another try.", labels=labels
    )
    resting = GaugeMetricFamily("mailroom_provider_resting", "1 while a provider rests after failures in a row, else 0.", labels=labels)
    active = GaugeMetricFamily("mailroom_provider_active", "1 when a provider is switched on in the console, else 0.", labels=labels)
    in_a_row = GaugeMetricFamily("mailroom_provider_consecutive_failures", "A provider's failures in a row.", labels=labels)
    last_success = GaugeMetricFamily(
        "mailroom_provider_last_success_timestamp_seconds", "When a provider last sent (Unix time; 0 if never).", labels=labels
    )
    now = timezone.now()
    fields = ("name", "channel", "kind", "is_active", "sent_count", "failed_count", "retried_count")
    fields += ("consecutive_failures", "resting_until", "last_success_at")
    for row in Provider.objects.order_by("channel", "priority", "id").values_list(*fields):
        name, channel, kind, is_active, sent_count, failed_count, retried_count, failures, resting_until, last_success_at = row
        values = [name, channel, kind]
        sent.add_metric(values, sent_count)
        failed.add_metric(values, failed_count)
        retries.add_metric(values, retried_count)
        resting.add_metric(values, 1 if resting_until and resting_until > now else 0)
        active.add_metric(values, 1 if is_active else 0)
        in_a_row.add_metric(values, failures)
        last_success.add_metric(values, last_success_at.timestamp() if last_success_at else 0)
    yield from (sent, failed, retries, resting, active, in_a_row, last_success)


def webhook_metrics() -> Iterator[Metric]:
    statuses = [WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED]
    totals = dict.fromkeys(statuses, 0)
    rows = WebhookDelivery.objects.filter(status__in=statuses).order_by().values_list("endpoint_id", "status").annotate(total=Count("*"))
    for _endpoint, status, total in rows:
        totals[status] += total
    family = GaugeMetricFamily(
        "mailroom_webhook_deliveries", "Outbound webhook deliveries waiting (pending) or given up (failed).", labels=["status"]
    )
    for status, total in totals.items():
        family.add_metric([status], total)
    yield family


def cluster_metrics() -> Iterator[Metric]:
    age = health.heartbeat_age()
    yield GaugeMetricFamily(
        "mailroom_cluster_heartbeat_age_seconds",
        "Seconds since a django-q2 cluster last ran the minute heartbeat (+Inf if never).",
        value=math.inf if age is None else age,
    )


def rate_limit_metrics() -> Iterator[Metric]:
    family = CounterMetricFamily(
        "mailroom_rate_limit_hits",
        "Times a client went over a rate limit (the first refused request of each client and window; lockouts).",
        labels=["scope"],
    )
    for scope, hits in sorted(rate_limit_hits().items()):
        family.add_metric([scope], hits)
    yield family


BUILT_IN: list[MetricSource] = [outbox_metrics, provider_metrics, webhook_metrics, cluster_metrics, rate_limit_metrics]


class MailroomCollector:
    """prometheus_client's custom-collector protocol: `collect` runs at every scrape."""

    def collect(self) -> Iterator[Metric]:
        for source in [*BUILT_IN, *METRIC_SOURCES]:
            yield from source()

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database


def render_metrics() -> bytes:
    """The text exposition format, read fresh from the database."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MailroomCollector())
    return generate_latest(registry)
