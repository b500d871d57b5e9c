"""The rollup equals counting raw rows, is idempotent, and picks up late events."""

import io
import random
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from marketing.analytics.rollups import roll_up, roll_up_recent
from marketing.analytics.tasks import roll_up_analytics
from marketing.models import DailyStat
from messaging.metadata import AUTOMATION_KEY, CAMPAIGN_KEY, LEGACY_AUTOMATION_KEY, LEGACY_CAMPAIGN_KEY
from messaging.models import DeliveryEvent, OutboxMessage
from messaging.schedules import SCHEDULES
from tests.analytics.conftest import at

pytestmark = pytest.mark.django_db
K = DeliveryEvent.Kind
COUNTS = [
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
]


def snapshot() -> list[tuple]:
    return sorted(
        (
            s.day,
            s.channel,
            s.provider,
            s.topic,
            s.campaign_id,
            s.automation_id,
            *(getattr(s, c) for c in COUNTS),
            s.revenue,
            s.opens_by_hour,
        )
        for s in DailyStat.objects.all()
    )


def raw_counts(first_day, last_day) -> dict[tuple, Counter]:
    """Count the raw rows directly, in Python, the slow obvious way."""
    expected: dict[tuple, Counter] = {}

    def dims(message):
        return (
            message.channel,
            message.provider.name if message.provider else "",
            message.topic.key if message.topic else "",
            str(message.metadata.get("campaign_id", "")),
            str(message.metadata.get("automation_id", "")),
        )

    def bump(day, message, name, n=1):
        if first_day <= day <= last_day:
            expected.setdefault((day, *dims(message)), Counter())[name] += n

    for message in OutboxMessage.objects.select_related("provider", "topic"):
        day = timezone.localtime(message.created_at).date()
        bump(day, message, "queued")
        if message.status in ("sent", "failed", "suppressed", "cancelled"):
            bump(day, message, message.status)
    first_human: dict[int, tuple] = {}
    for event in DeliveryEvent.objects.select_related("message__provider", "message__topic").order_by("occurred_at"):
        day = timezone.localtime(event.occurred_at).date()
        if event.kind in (K.OPENED, K.CLICKED):
            if event.is_automated:
                continue
            bump(day, event.message, f"{event.kind}_total")
            if (event.message_id, event.kind) not in first_human:
                first_human[(event.message_id, event.kind)] = True
                bump(day, event.message, f"{event.kind}_unique")
        else:
            bump(day, event.message, event.kind)
    return expected


def test_rollup_equals_counting_the_raw_rows(world, days_ago, newsletter):
    rng = random.Random(7)
    kinds = [K.DELIVERED, K.OPENED, K.OPENED, K.CLICKED, K.BOUNCED, K.COMPLAINED, K.UNSUBSCRIBED, K.REPLIED]
    for n in range(60):
        day = days_ago(rng.randrange(0, 4))
        metadata = {}
        if n % 3 == 0:
            metadata["campaign_id"] = rng.choice([11, 12])
        elif n % 3 == 1:
            metadata["automation_id"] = "welcome"
        channel = rng.choice(["email", "email", "sms"])
        message = world.message(
            channel=channel,
            day=day,
            status=rng.choice(["sent", "sent", "sent", "failed", "suppressed", "queued", "cancelled"]),
            provider="ses" if channel == "email" else "twilio",
            topic=newsletter if n % 2 else None,
            **metadata,
        )
        for _e in range(rng.randrange(0, 5)):
            when = at(day, rng.randrange(9, 24), rng.randrange(60)) + timedelta(days=rng.randrange(0, 2))
            world.event(message, rng.choice(kinds), when=when, automated=rng.random() < 0.2)

    first_day, last_day = days_ago(3), days_ago(0)
    roll_up(first_day=first_day, last_day=last_day)

    expected = raw_counts(first_day, last_day)
    actual = {
        (s.day, s.channel, s.provider, s.topic, s.campaign_id, s.automation_id): Counter(
            {c: getattr(s, c) for c in COUNTS if getattr(s, c)}
        )
        for s in DailyStat.objects.all()
    }
    assert actual == expected
    # opens by hour add up to the human opens of each row
    for stat in DailyStat.objects.all():
        assert sum(stat.opens_by_hour) == stat.opened_total
    # automated opens and clicks are left out of engagement but kept as raw rows
    window = (at(first_day, 0), at(last_day + timedelta(days=1), 0))
    human_opens = DeliveryEvent.objects.filter(kind=K.OPENED, is_automated=False, occurred_at__range=window).exclude(occurred_at=window[1])
    assert DailyStat.objects.aggregate(n=Sum("opened_total"))["n"] == human_opens.count()


def test_running_twice_changes_nothing(world, days_ago):
    message = world.message(day=days_ago(1), campaign_id=5)
    world.event(message, K.DELIVERED, when=at(days_ago(1), 10))
    world.event(message, K.OPENED, when=at(days_ago(1), 11))
    roll_up_recent(days=2)
    first = snapshot()
    roll_up_recent(days=2)
    assert snapshot() == first
    assert DailyStat.objects.count() == 1


def test_late_events_are_picked_up_by_the_next_run(world, days_ago):
    message = world.message(day=days_ago(1))
    world.event(message, K.DELIVERED, when=at(days_ago(1), 10))
    roll_up_analytics()
    assert DailyStat.objects.get().opened_unique == 0
    # an open from yesterday arrives after the run (a delayed webhook)
    world.event(message, K.OPENED, when=at(days_ago(1), 23, 30))
    roll_up_analytics()
    stat = DailyStat.objects.get()
    assert (stat.delivered, stat.opened_unique, stat.opened_total, stat.opens_by_hour[23]) == (1, 1, 1, 1)


def test_rows_outside_the_window_are_left_alone(world, days_ago):
    old = world.message(day=days_ago(10))
    roll_up(first_day=days_ago(10), last_day=days_ago(10))
    OutboxMessage.objects.filter(pk=old.pk).delete()  # raw rows purged later
    roll_up_recent(days=2)
    assert DailyStat.objects.filter(day=days_ago(10)).get().queued == 1


def test_unique_open_counts_on_the_first_human_open_day_only(world, days_ago):
    message = world.message(day=days_ago(2))
    world.event(message, K.OPENED, when=at(days_ago(2), 8), automated=True)  # Apple MPP prefetch
    world.event(message, K.OPENED, when=at(days_ago(1), 9))
    world.event(message, K.OPENED, when=at(days_ago(0), 9))
    roll_up(first_day=days_ago(2), last_day=days_ago(0))
    by_day = {s.day: (s.opened_unique, s.opened_total) for s in DailyStat.objects.all()}
    assert by_day == {days_ago(2): (0, 0), days_ago(1): (1, 1), days_ago(0): (0, 1)}


def test_revenue_goes_to_the_last_click_within_five_days(world, days_ago):
    ada = world.contact("ada@example.com")
    first = world.message(day=days_ago(4), contact=ada, campaign_id=1)
    last = world.message(day=days_ago(3), contact=ada, automation_id=9)
    world.event(first, K.CLICKED, when=at(days_ago(4), 10))
    world.event(last, K.CLICKED, when=at(days_ago(3), 10))
    world.event(last, K.CLICKED, when=at(days_ago(3), 11), automated=True)  # a link scanner
    world.order(ada, "40.00", when=at(days_ago(1), 12))
    world.order(ada, "99.00", when=at(days_ago(1), 13), status="pending")  # not revenue
    world.order(world.contact("bob@example.com"), "70.00", when=at(days_ago(1), 14))  # never clicked
    world.order(ada, "15.00", when=at(days_ago(0), 1) + timedelta(days=5))  # too late: outside 5 days
    roll_up(first_day=days_ago(6), last_day=days_ago(0) + timedelta(days=6))
    attributed = DailyStat.objects.filter(conversions__gt=0)
    assert [(s.day, s.automation_id, s.campaign_id, s.conversions, s.revenue) for s in attributed] == [
        (days_ago(1), "9", "", 1, Decimal("40.00"))
    ]


def test_backfill_command_and_schedule(world, days_ago):
    world.message(day=days_ago(20))
    call_command("backfill_analytics", "--days", "30", stdout=io.StringIO())
    assert DailyStat.objects.get().day == days_ago(20)
    schedule = next(s for s in SCHEDULES if s["func"] == "marketing.analytics.tasks.roll_up_analytics")
    assert schedule["minutes"] == 15


def test_a_null_campaign_id_in_metadata_counts_as_none(world, days_ago):
    message = world.message(day=days_ago(0))
    OutboxMessage.objects.filter(pk=message.pk).update(metadata={"campaign_id": None, "automation_id": 7})
    roll_up_recent(days=1)
    stat = DailyStat.objects.get()
    assert (stat.campaign_id, stat.automation_id) == ("", "7")


def test_messages_count_for_their_campaign_and_automation_under_the_keys_written_today_and_before(world, days_ago):
    # given a message written under today's keys, and one stored before they were fixed
    today = world.message(day=days_ago(0), **{CAMPAIGN_KEY: 7, AUTOMATION_KEY: 3})
    stored_before = world.message(day=days_ago(0))
    OutboxMessage.objects.filter(pk=stored_before.pk).update(metadata={LEGACY_CAMPAIGN_KEY: 8, LEGACY_AUTOMATION_KEY: "welcome"})
    world.event(today, DeliveryEvent.Kind.UNSUBSCRIBED, when=at(days_ago(0), 10))
    # when the rollup runs
    roll_up_recent(days=1)
    # then each counts for its campaign and automation: history is not lost
    stats = {(s.campaign_id, s.automation_id): (s.sent, s.unsubscribed) for s in DailyStat.objects.all()}
    assert stats == {("7", "3"): (1, 1), ("8", "welcome"): (1, 0)}
