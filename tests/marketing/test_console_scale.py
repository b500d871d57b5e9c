"""The console's busiest pages do a fixed number of queries however many rows lie behind
them (issue 21): the dashboard, a campaign report, the analytics page, the automation runs
and the audit trail. Each test renders a page once with a few rows, adds many more of every
kind the page reads, and renders it again within the first count. (That the queries use
their indexes on PostgreSQL is tests/marketing/test_console_scale_postgres.py's part.)"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.console import shown
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.queries import campaign_report
from marketing.models import Automation, AutomationRun, CampaignRecipient, CampaignVariant
from messaging.audit import record_audit
from messaging.consent import subscribe, unsubscribe
from messaging.contacts import create_contact
from messaging.models import AuditEntry, DeliveryEvent, OutboxMessage, Topic, TrackedLink
from messaging.queries import Figure, counted, distinct_values, message_counts
from tests.marketing.conftest import make_people

pytestmark = pytest.mark.django_db
Kind = DeliveryEvent.Kind


def outbox(person, **fields) -> OutboxMessage:
    fields = {"channel": "email", **fields}
    return OutboxMessage.objects.create(to_address=person.email, contact=person, next_attempt_at=timezone.now(), **fields)


def rendered_queries(client, url: str, **params) -> int:
    client.get(url, params)  # warm: per-process caches (sidebar badges, translations) filled
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response.status_code
    return len(captured)


# --- dashboard ----------------------------------------------------------------------------
def people_with_consent(topics, n: int, *, prefix: str) -> None:
    for i in range(n):
        person = create_contact(actor=None, email=f"{prefix}{i}@example.com")
        for topic in topics:
            subscribe(actor=None, contact=person, topic=topic)
        if i % 3 == 0:
            unsubscribe(actor=None, contact=person, topic=topics[0])


def test_the_dashboard_does_not_query_more_with_more_contacts(client, admin_user, newsletter, django_assert_max_num_queries):
    client.force_login(admin_user)
    offers = Topic.objects.create(key="offers", name="Offers")
    people_with_consent([newsletter, offers], 2, prefix="a")
    few = rendered_queries(client, "/admin/")
    people_with_consent([newsletter, offers], 25, prefix="b")
    with django_assert_max_num_queries(few):
        page = client.get("/admin/").content.decode()
    # the figures are still the exact ones (small tables are counted, not estimated)
    assert '<span data-testid="kpi-value">27</span>' in page
    assert "about" not in page


def test_a_big_figure_is_shown_as_about_and_a_small_one_as_counted():
    assert shown(Figure(27)) == 27
    assert shown(Figure(1_234_567, is_estimate=True)) == "about 1,230,000"
    assert shown(Figure(10_001, is_estimate=True)) == "about 10,000"


def test_counted_is_exact_up_to_its_limit_and_estimated_past_it_where_the_database_can(newsletter):
    people_with_consent([newsletter], 5, prefix="c")
    everyone = newsletter.subscriptions.all()
    assert counted(everyone, exact_up_to=10) == Figure(5)
    assert counted(everyone.none()) == Figure(0)
    past_the_limit = counted(everyone, exact_up_to=2)
    if connection.vendor == "postgresql":  # the planner's estimate, never below what was counted
        assert past_the_limit.is_estimate and past_the_limit.value >= 3
    else:  # SQLite has no estimate: the full count, said to be exact
        assert past_the_limit == Figure(5, is_estimate=False)


# --- campaign report ---------------------------------------------------------------------
def engage(messages, *, links) -> None:
    """Every message sent and delivered; half opened, a third clicked on each link, one
    bounced; and an automated open that must not count as a person's."""
    OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(status=OutboxMessage.Status.SENT)
    now = timezone.now()
    events = []
    for n, message in enumerate(messages):
        events.append(DeliveryEvent(message=message, kind=Kind.DELIVERED, occurred_at=now))
        if n % 2 == 0:
            events.append(DeliveryEvent(message=message, kind=Kind.OPENED, occurred_at=now + timedelta(hours=n)))
        if n % 3 == 0:
            events += [DeliveryEvent(message=message, kind=Kind.CLICKED, occurred_at=now, payload={"link": link.pk}) for link in links]
    events.append(DeliveryEvent(message=messages[-1], kind=Kind.OPENED, occurred_at=now, is_automated=True))
    events.append(DeliveryEvent(message=messages[0], kind=Kind.BOUNCED, occurred_at=now))
    DeliveryEvent.objects.bulk_create(events)


def test_the_campaign_report_does_not_query_more_with_more_recipients_and_events(
    client, marketer, sending, newsletter, django_assert_max_num_queries
):
    # given a campaign of six, sent, with engagement on one link, in one variant
    client.force_login(marketer)
    fan_out(campaign=sending)
    first = CampaignVariant.objects.create(campaign=sending, label="A", subject="One")
    CampaignRecipient.objects.filter(campaign=sending).update(variant=first)
    messages = list(OutboxMessage.objects.filter(campaign_recipient__campaign=sending).order_by("pk"))
    link = TrackedLink.objects.create(url="https://example.com/one", url_hash="one")
    engage(messages, links=[link])
    url = f"/admin/marketing/campaign/{sending.pk}/report/"
    few = rendered_queries(client, url)
    # when it has a second variant, three links and many more recipients with events
    second = CampaignVariant.objects.create(campaign=sending, label="B", subject="Two")
    more = [outbox(person) for person in make_people(newsletter, 20, prefix="m")]
    CampaignRecipient.objects.bulk_create(
        CampaignRecipient(campaign=sending, contact=m.contact, message=m, variant=second if n % 2 else first) for n, m in enumerate(more)
    )
    links = [link, *(TrackedLink.objects.create(url=f"https://example.com/{n}", url_hash=f"h{n}") for n in range(2))]
    engage(more, links=links)
    # then the report still needs no more queries than before
    with django_assert_max_num_queries(few):
        page = client.get(url)
    assert page.status_code == 200
    # and its figures are what the rows say: 26 sent and delivered, two bounced, opens are people's
    # (a click counts as an open, the automated hit does not)
    report = campaign_report(sending)
    everything = [*messages, *more]
    opened = {m.pk for n, m in enumerate(messages) if n % 2 == 0 or n % 3 == 0} | {
        m.pk for n, m in enumerate(more) if n % 2 == 0 or n % 3 == 0
    }
    assert (report["sent"], report["delivered"], report["opens"], report["bounces"]) == (len(everything), len(everything), len(opened), 2)
    by_label = {row["label"]: row for row in report["variants"]}
    assert by_label["A"]["sent"] + by_label["B"]["sent"] == len(everything)
    assert by_label["A"]["delivered"] + by_label["B"]["delivered"] == report["delivered"]
    assert by_label["A"]["opens"] + by_label["B"]["opens"] == report["opens"]
    assert sum(row["sent"] for row in report["languages"]) == len(everything)
    assert sum(row["opens"] for row in report["languages"]) == report["opens"]
    clicked = len([n for n in range(len(more)) if n % 3 == 0])
    assert {row["url"]: row["unique"] for row in report["links"]}["https://example.com/0"] == clicked


def test_the_report_of_a_campaign_without_messages_is_all_zeros(marketer, draft):
    report = campaign_report(draft)
    assert (report["recipients"], report["sent"], report["delivered"], report["opens"]) == (0, 0, 0, 0)
    assert report["variants"] == [] and report["links"] == [] and report["languages"] == []


# --- analytics ---------------------------------------------------------------------------
def test_the_analytics_page_does_not_query_more_with_more_messages(client, admin_user, newsletter, django_assert_max_num_queries):
    client.force_login(admin_user)
    people = make_people(newsletter, 12, prefix="x")
    outbox(people[0])
    few = rendered_queries(client, "/admin/analytics/", range="30")
    for n, person in enumerate(people):
        outbox(person, status=["sent", "failed", "queued"][n % 3], **({} if n % 2 else {"channel": "sms"}))
    with django_assert_max_num_queries(few):
        assert client.get("/admin/analytics/", {"range": "30"}).status_code == 200
    # the status table counts what the outbox holds now
    counts = message_counts(since=timezone.now() - timedelta(days=1))
    assert counts["total"] == 13 and counts["by_status"]["sent"] == 4 and counts["by_status"]["queued"] == 1 + 4
    assert counts["by_channel"]["sms"]["total"] == 6


# --- automation runs and the audit trail ---------------------------------------------------
def test_the_automation_runs_do_not_query_more_with_more_runs(client, admin_user, newsletter, django_assert_max_num_queries):
    client.force_login(admin_user)
    flows = [Automation.objects.create(name=f"Flow {n}", trigger={"events": ["signed_up"]}) for n in range(2)]
    people = make_people(newsletter, 15, prefix="r", subscribed=False)
    AutomationRun.objects.create(automation=flows[0], contact=people[0], trigger_key="k")
    few = rendered_queries(client, "/admin/marketing/automationrun/")
    flows += [Automation.objects.create(name=f"Flow {n}", trigger={"events": ["signed_up"]}) for n in range(2, 5)]
    AutomationRun.objects.bulk_create(
        AutomationRun(automation=flows[n % 5], contact=person, trigger_key=f"k{n}") for n, person in enumerate(people)
    )
    with django_assert_max_num_queries(few):
        page = client.get("/admin/marketing/automationrun/").content.decode()
    assert "r14@example.com" in page and "Flow 4" in page


def test_the_audit_trail_does_not_query_more_with_more_entries_and_lists_every_verb(client, admin_user, django_assert_max_num_queries):
    client.force_login(admin_user)
    record_audit(actor=admin_user, verb="approved", target_type="campaign")
    few = rendered_queries(client, "/admin/messaging/auditentry/")
    for n in range(30):
        record_audit(actor=admin_user if n % 2 else None, verb=["sent", "paused", "erased"][n % 3], target_type=f"type{n % 4}")
    with django_assert_max_num_queries(few):
        page = client.get("/admin/messaging/auditentry/").content.decode()
    # the filters list every value there is, each once
    assert page.count("?verb=paused") == 1 and page.count("?target_type=type3") == 1
    verbs = sorted(set(AuditEntry.objects.values_list("verb", flat=True)))  # with the fixtures' own (roles_changed…)
    assert {"approved", "erased", "paused", "sent"} <= set(verbs)
    assert distinct_values(AuditEntry.objects.all(), "verb") == verbs
    assert distinct_values(AuditEntry.objects.filter(verb="sent"), "target_type") == ["type0", "type1", "type2", "type3"]
    assert distinct_values(AuditEntry.objects.none(), "verb") == []


def test_a_language_appears_in_the_report_once_something_was_sent_in_it_or_happened_to_it(sending):
    # given a campaign fanned out but nothing sent yet: no language has anything to show
    fan_out(campaign=sending)
    messages = list(OutboxMessage.objects.filter(campaign_recipient__campaign=sending).order_by("pk"))
    assert campaign_report(sending)["languages"] == []
    # when one message fails and another bounces back without being counted as sent
    OutboxMessage.objects.filter(pk=messages[0].pk).update(status=OutboxMessage.Status.FAILED)
    assert campaign_report(sending)["languages"] == []
    DeliveryEvent.objects.create(message=messages[1], kind=Kind.BOUNCED, occurred_at=timezone.now())
    # then its language has a row: nothing sent, one bounce
    (row,) = campaign_report(sending)["languages"]
    assert (row["sent"], row["bounces"], row["opens"]) == (0, 1, 0)
