"""Every report figure equals what the raw rows say (issue 17, build 2).

A campaign goes out through the real fan-out, an automation through the real runner, both
through `send_due_messages` into the sandbox; recipients open, click and one-click
unsubscribe by real HTTP requests on the links of the mail the sandbox received; a
provider reports a complaint; the rollup task runs. Then each figure of the campaign
report, the automation report, the analytics (per day, channel, provider, topic, campaign,
automation; API and console) and the API stats is recomputed from OutboxMessage and
DeliveryEvent rows and compared."""

import csv
import io
import re
from datetime import timedelta

import pytest

from marketing.analytics import queries as analytics
from marketing.analytics.tasks import roll_up_analytics
from marketing.automations.queries import automation_report
from marketing.automations.runner import run_due_steps
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.queries import campaign_report, recipient_counts
from marketing.events import track_event
from marketing.models import AutomationRun
from messaging.delivery.inbound import record_delivery_event
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.metadata import AUTOMATION_KEY
from messaging.models import DeliveryEvent, OutboxMessage, Provider, SandboxMessage
from tests.api.conftest import as_user  # noqa: F401  (an API client as a console user)
from tests.marketing.test_automations import automation, person, send

pytestmark = pytest.mark.django_db
Kind, Status = DeliveryEvent.Kind, OutboxMessage.Status
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
SCANNER = "Python-urllib/3.12"
LINK = {
    "open": re.compile(r"http://testserver(/o/[^\"'<>\s]+\.gif)"),
    "click": re.compile(r"http://testserver(/t/\d+/[^\"'<>\s/]+/)"),
    "unsubscribe": re.compile(r"http://testserver(/u/[^\"'<>\s/]+/)"),
}


def links(caught: SandboxMessage, kind: str) -> list[str]:
    found = LINK[kind].findall(caught.body_html + caught.body_text + str(caught.headers))
    return list(dict.fromkeys(found))


def raw_figures(messages) -> dict[str, int]:
    """What the rollup should say about these messages, from the raw rows alone."""
    messages = OutboxMessage.objects.filter(pk__in=[m.pk for m in messages])
    events = DeliveryEvent.objects.filter(message__in=messages)
    human = events.filter(is_automated=False)
    return {
        "queued": messages.count(),
        **{status: messages.filter(status=status).count() for status in ("sent", "failed", "suppressed", "cancelled")},
        "delivered": events.filter(kind=Kind.DELIVERED).count(),
        "opened_total": human.filter(kind=Kind.OPENED).count(),
        "clicked_total": human.filter(kind=Kind.CLICKED).count(),
        "opened_unique": human.filter(kind=Kind.OPENED).values("message").distinct().count(),
        "clicked_unique": human.filter(kind=Kind.CLICKED).values("message").distinct().count(),
        "bounced": events.filter(kind=Kind.BOUNCED).count(),
        "complained": events.filter(kind=Kind.COMPLAINED).count(),
        "unsubscribed": events.filter(kind=Kind.UNSUBSCRIBED).count(),
        "replied": events.filter(kind=Kind.REPLIED).count(),
    }


def reported(row: dict) -> dict[str, int]:
    return {name: int(row[name]) for name in analytics.METRICS if name != "conversions"}


def distinct_messages(messages, *kinds, people_only=False) -> int:
    events = DeliveryEvent.objects.filter(message__in=messages, kind__in=kinds)
    if people_only:  # opens and clicks: automated hits (prefetch, scanners) are not people
        events = events.filter(is_automated=False)
    return events.values("message").distinct().count()


@pytest.fixture
def journey(clock, sending, catalog, client, people, marketer, committed):
    """The campaign to six people and an automation to three, sent into the sandbox (whose
    server refuses one campaign address outright), then read, clicked and unsubscribed
    from in their mailboxes an hour later."""
    Provider.objects.create(name="Sandbox Email", channel="email", kind=Provider.Kind.SANDBOX, config={"fail_addresses": [people[4].email]})
    flow = automation(steps=[send()])
    fans = [person(f"fan{n}@example.com", topics=catalog) for n in range(3)]
    with committed():
        for fan in fans:
            track_event(contact=fan, name="signed_up")
    fan_out(campaign=sending)

    run_due_steps(owner="test")
    assert send_due_messages(owner="test") >= 9
    clock.shift(timedelta(hours=1))  # past the prefetch window: these are people

    caught = {c.message_id: c for c in SandboxMessage.objects.all()}
    campaign_messages = list(OutboxMessage.objects.filter(campaign_recipient__campaign=sending).order_by("contact_id"))
    flow_messages = list(OutboxMessage.objects.filter(automation_logs__run__automation=flow).distinct().order_by("pk"))
    assert len(campaign_messages) == 6 and len(flow_messages) == 3
    # who does what, from the bytes each one received
    for message in campaign_messages[:4] + flow_messages[:2]:
        for url in links(caught[message.pk], "open"):
            assert client.get(url, HTTP_USER_AGENT=BROWSER).status_code == 200
    for message in campaign_messages[1:4] + flow_messages[:1]:
        url = next(iter(links(caught[message.pk], "click")))
        assert client.get(url, HTTP_USER_AGENT=BROWSER).status_code == 302
    for message in campaign_messages[2:4] + flow_messages[1:2]:
        url = links(caught[message.pk], "unsubscribe")[0]
        response = client.post(url, {"List-Unsubscribe": "One-Click"}, HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 200
        client.post(url, {"List-Unsubscribe": "One-Click"}, HTTP_USER_AGENT=BROWSER)  # the mail client retries
    # a mail gateway's link scanner follows the links of a mail nobody clicked: delivery, not people
    scanned = caught[campaign_messages[0].pk]
    assert client.get(links(scanned, "open")[0], HTTP_USER_AGENT=SCANNER).status_code == 200
    assert client.get(links(scanned, "click")[0], HTTP_USER_AGENT=SCANNER).status_code == 302
    # a mailbox provider reports a complaint about one campaign mail and one automation mail
    for message in (campaign_messages[5], flow_messages[2]):
        message.refresh_from_db()
        assert record_delivery_event(
            kind=Kind.COMPLAINED,
            provider=message.provider,
            provider_message_id=message.provider_message_id,
            external_id=f"fbl-{message.pk}",
        )
    roll_up_analytics()
    return sending, flow, campaign_messages, flow_messages


def test_campaign_report_equals_the_raw_rows(journey):
    campaign, _flow, messages, _flow_messages = journey
    report = campaign_report(campaign)
    sent = OutboxMessage.objects.filter(campaign_recipient__campaign=campaign, status=Status.SENT).count()
    assert {name: report[name] for name in ("sent", "delivered", "opens", "clicks", "unsubscribes", "bounces", "complaints")} == {
        "sent": sent,
        "delivered": distinct_messages(messages, Kind.DELIVERED),
        "opens": distinct_messages(messages, Kind.OPENED, Kind.CLICKED, people_only=True),
        "clicks": distinct_messages(messages, Kind.CLICKED, people_only=True),
        "unsubscribes": distinct_messages(messages, Kind.UNSUBSCRIBED),
        "bounces": distinct_messages(messages, Kind.BOUNCED),
        "complaints": distinct_messages(messages, Kind.COMPLAINED),
    }
    # and what happened is all there: one address bounced, the sandbox delivered the five
    # others, three people clicked, two unsubscribed, one complained
    figures = ("sent", "failed", "delivered", "clicks", "unsubscribes", "bounces", "complaints")
    assert [report[name] for name in figures] == [5, 1, 5, 3, 2, 1, 1]
    for name in ("queued", "failed", "suppressed", "cancelled"):
        status = {"queued": Status.QUEUED}.get(name, name)
        assert report[name] == sum(1 for m in OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]) if m.status == status), name
    # the recipient rows read their message's status (issue 16): all six are "sent"
    assert recipient_counts(campaign) == {"sent": 5, "failed": 1}


def test_automation_report_equals_the_raw_rows(journey):
    _campaign, flow, _messages, flow_messages = journey
    report = automation_report(automation=flow)
    rows = OutboxMessage.objects.filter(pk__in=[m.pk for m in flow_messages])
    assert report["entered"] == AutomationRun.objects.filter(automation=flow).count() == 3
    assert report["messages_queued"] == rows.count() == 3
    assert report["messages_sent"] == rows.filter(status=Status.SENT).count() == 3
    assert report["messages_suppressed"] == rows.filter(status=Status.SUPPRESSED).count()
    assert report["messages_cancelled"] == rows.filter(status=Status.CANCELLED).count()


def test_analytics_per_day_channel_provider_topic_campaign_and_automation_equal_the_raw_rows(journey):
    campaign, flow, campaign_messages, flow_messages = journey
    everything = list(OutboxMessage.objects.all())
    filters = analytics.Filters.last(30)
    cases = [
        ("campaign_id", str(campaign.pk), campaign_messages),
        ("automation_id", str(flow.pk), flow_messages),
        *[("channel", channel, [m for m in everything if m.channel == channel]) for channel in {m.channel for m in everything}],
        *[("provider", name, [m for m in everything if m.provider.name == name]) for name in {m.provider.name for m in everything}],
        *[
            ("topic", key, [m for m in everything if (m.topic.key if m.topic else "") == key])
            for key in {m.topic.key if m.topic else "" for m in everything}
        ],
    ]
    for by, value, messages in cases:
        rows = {row[by]: row for row in analytics.breakdown(filters, by=by)}
        assert reported(rows[value]) == raw_figures(messages), (by, value)
    today = [day for day in analytics.per_day(filters) if day["sent"]]
    assert len(today) == 1 and reported(today[0]) == raw_figures(everything)
    assert reported(analytics.totals(filters)) == raw_figures(everything)
    # the campaign's and automation's own figures are real, not zeros
    assert [raw_figures(campaign_messages)[name] for name in ("delivered", "unsubscribed", "bounced")] == [5, 2, 1]
    assert raw_figures(flow_messages)["sent"] == 3 and raw_figures(flow_messages)["complained"] == 1


def test_analytics_api_and_console_pages_per_campaign_and_automation_show_the_raw_counts(journey, as_user, client, marketer):  # noqa: F811
    campaign, flow, campaign_messages, flow_messages = journey
    api = as_user(marketer)
    for path, key, value, messages in (
        ("campaigns", "campaign_id", str(campaign.pk), campaign_messages),
        ("automations", "automation_id", str(flow.pk), flow_messages),
    ):
        rows = {row[key]: row for row in api.get(f"/api/v1/analytics/{path}/").json()}
        assert reported(rows[value]) == raw_figures(messages), path
        client.force_login(marketer)
        page = client.get(f"/admin/analytics/{path}/{value}/").content.decode()
        assert f'data-testid="kpi-sent">{raw_figures(messages)["sent"]}<' in page
        assert f"{raw_figures(messages)['delivered']} delivered" in page
        exported = list(csv.DictReader(io.StringIO(client.get("/admin/analytics/export/daily/", {key: value}).content.decode())))
        day = next(row for row in exported if row["sent"] not in ("0", ""))
        assert {name: int(day[name]) for name in raw_figures(messages) if name in day} == {
            name: figure for name, figure in raw_figures(messages).items() if name in day
        }


def test_api_stats_equal_the_raw_rows(journey, as_user, ops):  # noqa: F811
    body = as_user(ops).get("/api/v1/stats/messages/").json()
    assert body["total"] == OutboxMessage.objects.count()
    assert body["by_status"] == {status: OutboxMessage.objects.filter(status=status).count() for status in Status.values}
    assert body["events"] == {kind: DeliveryEvent.objects.filter(kind=kind).count() for kind in Kind.values}
    assert body["events"]["delivered"] == OutboxMessage.objects.filter(status=Status.SENT).count()
    assert body["events"]["unsubscribed"] == 3


def test_the_calendar_lists_scheduled_automation_sends_under_the_key_the_send_step_writes(client, marketer):
    from django.utils import timezone

    # given an automation's message held until tomorrow (quiet hours), as the send step queues it
    tomorrow = timezone.now() + timedelta(days=1)
    enqueue_message(channel="email", to="ada@example.com", text="x", scheduled_at=tomorrow, metadata={AUTOMATION_KEY: 77})
    # when the marketer opens the calendar on that day
    client.force_login(marketer)
    page = client.get("/admin/marketing/campaign/calendar/", {"date": tomorrow.date().isoformat()}).content.decode()
    # then the day shows the automation's send
    assert "77 · 1" in page
