"""The campaigns' fan-out progress for /metrics (registered into messaging.metrics from
marketing/wiring.py): for each campaign whose messages are being created, or whose A/B
holdouts wait for the winner, the recipients planned (`Campaign.recipient_count`, set when
the fan-out starts) and the outbox messages created so far (the sum of its done
`FanoutChunk.messages`, written with each chunk). One query over a few campaigns and their
chunks (tens per campaign), never a count over recipients or messages."""

from collections.abc import Iterator

from django.db.models import Count, Q, Sum
from prometheus_client.core import GaugeMetricFamily, Metric

from marketing.models import Campaign

IN_PROGRESS = [Campaign.Fanout.RUNNING, Campaign.Fanout.TESTING]


def fanout_metrics() -> Iterator[Metric]:
    labels = ["campaign", "channel", "fanout"]
    planned = GaugeMetricFamily(
        "mailroom_campaign_fanout_planned_recipients", "Recipients a campaign's fan-out will message.", labels=labels
    )
    enqueued = GaugeMetricFamily("mailroom_campaign_fanout_enqueued_messages", "Outbox messages its fan-out created so far.", labels=labels)
    chunks = GaugeMetricFamily("mailroom_campaign_fanout_chunks", "Fan-out chunks, done or pending.", labels=[*labels, "state"])
    rows = (
        Campaign.objects.filter(fanout__in=IN_PROGRESS)
        .order_by("pk")
        .values_list("pk", "channel", "fanout", "recipient_count")
        .annotate(
            total=Count("fanout_chunks"),
            done=Count("fanout_chunks", filter=Q(fanout_chunks__done=True)),
            created=Sum("fanout_chunks__messages", filter=Q(fanout_chunks__done=True), default=0),
        )
    )
    for campaign_id, channel, fanout, recipient_count, total, done, created in rows:
        values = [str(campaign_id), channel, fanout]
        planned.add_metric(values, recipient_count)
        enqueued.add_metric(values, created)
        chunks.add_metric([*values, "done"], done)
        chunks.add_metric([*values, "pending"], total - done)
    yield from (planned, enqueued, chunks)
