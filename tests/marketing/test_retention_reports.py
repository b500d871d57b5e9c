"""Retention against the figures (issue 21, item 5): a campaign and an automation go out through
the real fan-out and runner, people open, click and unsubscribe by real requests, the real
rollup job runs; then the retention job prunes. Analytics (DailyStat, kept) says the same
before and after; the campaign report, which counts raw events, says the same while only
bodies went, and says plainly that events were deleted once they did."""

import html
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from marketing.analytics import queries as analytics
from marketing.analytics.tasks import roll_up_analytics
from marketing.campaigns.queries import campaign_report
from marketing.models import DailyStat
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.retention import prune_old_messages
from messaging.models import DeliveryEvent, OutboxBody, OutboxMessage
from messaging.timeline import message_entries
from tests.analytics.test_rollups import snapshot
from tests.marketing import test_reports_equal_raw_events as reports
from tests.marketing.conftest import START

pytestmark = pytest.mark.django_db
journey = reports.journey  # the campaign and automation, sent, read, clicked and rolled up
FIGURES = ("recipients", "sent", "failed", "delivered", "opens", "clicks", "unsubscribes", "bounces", "complaints")


@pytest.fixture(autouse=True)
def _retention(settings):
    settings.MAILROOM_BODY_RETENTION_DAYS = 180
    settings.MAILROOM_EVENT_RETENTION_DAYS = 400


def journey_days() -> analytics.Filters:
    day = START.date()
    return analytics.Filters(since=day - timedelta(days=1), until=day + timedelta(days=1))


def test_pruning_bodies_changes_no_rollup_and_no_report_figure(journey, clock):
    campaign, *_messages = journey
    stats, totals, report = snapshot(), analytics.totals(journey_days()), campaign_report(campaign)
    events = DeliveryEvent.objects.count()
    assert report["opens"] > 0 and report["clicks"] > 0 and stats

    # half a year later, the nightly job runs
    clock.shift(timedelta(days=181))
    result = prune_old_messages()

    # every finished message lost its body; no event went (they are younger than 400 days)
    finished = OutboxMessage.objects.exclude(status__in=[OutboxMessage.Status.QUEUED, OutboxMessage.Status.SENDING])
    assert result.bodies == finished.count() >= 9 and result.events == 0
    assert not OutboxBody.objects.filter(message__in=finished).exists() and not finished.filter(body_pruned_at__isnull=True).exists()
    assert DeliveryEvent.objects.count() == events
    # the rollups, the analytics and the campaign report say exactly what they said
    assert snapshot() == stats and analytics.totals(journey_days()) == totals
    assert campaign_report(campaign) == report and report["events_kept_since"] is None


def test_pruning_events_keeps_the_rollups_and_the_report_says_what_went(journey, clock, client, marketer):
    campaign, _flow, campaign_messages, _flow_messages = journey
    stats, totals, report = snapshot(), analytics.totals(journey_days()), campaign_report(campaign)
    assert report["clicks"] == 3

    # more than 400 days later, and the rollups have not run since that day: the events stay
    clock.shift(timedelta(days=401))
    assert prune_old_messages().events == 0
    assert DeliveryEvent.objects.filter(message__in=campaign_messages).exists()

    # once the rollup job has counted days after them, they go
    enqueue_message(channel="email", to="someone@example.com", subject="Today", text="hi")
    roll_up_analytics()
    result = prune_old_messages()
    assert result.events > 0 and not DeliveryEvent.objects.filter(message__in=campaign_messages).exists()

    # the journey's rollup rows are untouched, and the analytics of those days say the same
    assert [row for row in snapshot() if row[0] <= START.date() + timedelta(days=1)] == stats
    assert analytics.totals(journey_days()) == totals
    # the campaign report keeps what the message rows say, and says the events were deleted
    after = campaign_report(campaign)
    assert {name: after[name] for name in ("recipients", "sent", "failed")} == {
        name: report[name] for name in ("recipients", "sent", "failed")
    }
    assert after["events_kept_since"] is not None and after["clicks"] == 0
    client.force_login(marketer)
    page = html.unescape(client.get(f"/admin/marketing/campaign/{campaign.pk}/report/").content.decode())
    assert "were deleted under the retention policy" in page and "The daily totals in Analytics still include them." in page
    # and the contact's timeline says so rather than show a message nobody opened
    entry = message_entries(campaign_messages[2].contact, 50)[-1]
    assert "content deleted under the retention policy" in entry.detail and "events before " in entry.detail
    assert entry.badges == ()


def test_a_backfill_never_recomputes_days_whose_events_may_be_gone(journey, clock):
    stats = snapshot()
    clock.shift(timedelta(days=401))
    day = START.date().isoformat()
    with pytest.raises(CommandError, match="keep their rows"):
        call_command("backfill_analytics", "--since", day, "--until", day)
    assert snapshot() == stats and DailyStat.objects.filter(day=START.date()).exists()
