""" "Messages by status and channel" over a long range: settled days come from the rollups,
recent days from the outbox, and the table equals counting every outbox row."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing.analytics.queries import Filters
from marketing.analytics.rollups import backfill, day_start, roll_up_recent
from marketing.analytics.status_table import message_status_table
from messaging.queries import message_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def a_year(world, days_ago):
    """Messages of every status on days long settled and on the days the rollups still redo."""
    for n, (channel, status) in enumerate(
        [("email", "sent"), ("email", "failed"), ("sms", "sent"), ("email", "suppressed"), ("email", "cancelled"), ("email", "queued")]
    ):
        world.message(channel=channel, day=days_ago(300 - n), status=status, provider="twilio" if channel == "sms" else "ses")
        world.message(channel=channel, day=days_ago(n % 2), status=status, provider="twilio" if channel == "sms" else "ses")
    backfill(first_day=days_ago(365), last_day=days_ago(0))  # as `backfill_analytics` does
    roll_up_recent(days=2)  # and the schedule every 15 minutes
    return world


def test_the_table_equals_counting_the_outbox(a_year, days_ago):
    filters = Filters(since=days_ago(365), until=days_ago(0))
    counted = message_counts(since=day_start(filters.since), until=day_start(filters.until + timedelta(days=1)))
    shown = message_status_table(filters)
    assert shown["total"] == counted["total"] == 12
    assert shown["by_status"] == counted["by_status"]
    assert shown["by_channel"] == counted["by_channel"]
    only_sms = message_status_table(Filters(since=days_ago(365), until=days_ago(0), channel="sms"))
    assert only_sms["total"] == 2 and set(only_sms["by_channel"]) == {"sms"}


def test_settled_days_are_not_counted_from_the_outbox(a_year, days_ago):
    with CaptureQueriesContext(connection) as queries:
        message_status_table(Filters(since=days_ago(365), until=days_ago(0)))
    outbox = [q["sql"] for q in queries.captured_queries if "messaging_outboxmessage" in q["sql"]]
    assert len(outbox) == 1  # the recent days only: the query starts at the rollups' horizon, not a year ago
    horizon = day_start(days_ago(1)).astimezone(timezone.UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert horizon in outbox[0] and str(days_ago(365)) not in outbox[0]


def test_without_rollups_everything_is_counted_from_the_outbox(world, days_ago):
    world.message(day=days_ago(100), status="sent")
    shown = message_status_table(Filters(since=days_ago(365), until=days_ago(0)))
    assert shown["total"] == 1 and shown["by_status"]["sent"] == 1
