"""On PostgreSQL, the queries behind the console's busiest pages can be served by their
indexes (issue 21): a campaign report goes from the campaign's recipients to their messages
and events by index, a month of "messages by status and channel" is read from
outbox_created_channel_status, the automation runs are read newest first from
automation_run_newest_first, and the audit trail's filters jump through the verb and type
indexes. A test database is small, so the planner would rightly read whole tables: each plan
is asked for with sequential scans switched off (enable_seqscan = off), which still leaves a
sequential scan in the plan when no index can serve the query."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.console import dashboard_callback
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.queries import campaign_report, engagement_timeline
from marketing.models import Automation, AutomationRun
from messaging import queries
from messaging.models import AuditEntry, DeliveryEvent, OutboxMessage
from messaging.queries import distinct_values, message_counts, prefer_index_scans
from tests.marketing.conftest import make_people

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
BIG_TABLES = ("messaging_outboxmessage", "messaging_deliveryevent", "marketing_campaignrecipient", "marketing_automationrun")


def plan(sql: str, params=(), *, off=("enable_seqscan",)) -> str:
    """EXPLAIN of one query with sequential scans (and whatever else `off` names) off, as
    prefer_index_scans plans it."""
    with prefer_index_scans(), connection.cursor() as cursor:
        for setting in off:
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def captured(run) -> list[str]:
    with CaptureQueriesContext(connection) as queries_run:
        run()
    return [query["sql"] for query in queries_run.captured_queries]


def test_the_campaign_report_reaches_messages_and_events_from_the_campaign_by_index(sending):
    fan_out(campaign=sending)
    messages = list(OutboxMessage.objects.filter(campaign_recipient__campaign=sending))
    OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(status=OutboxMessage.Status.SENT)
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(message=m, kind=DeliveryEvent.Kind.OPENED, occurred_at=timezone.now()) for m in messages
    )
    sqls = [
        sql for sql in captured(lambda: (campaign_report(sending), engagement_timeline(sending))) if "marketing_campaignrecipient" in sql
    ]
    reading_events = [sql for sql in sqls if "messaging_deliveryevent" in sql]
    assert len(reading_events) == 3  # messages with their events, the links, the timeline
    for sql in sqls:
        found = plan(sql)
        for table in BIG_TABLES:
            assert f"Seq Scan on {table}" not in found, found
        # the campaign's recipients are found by campaign, never by reading them all
        assert "(campaign_id = " in found, found
    for sql in reading_events:
        assert "Index Cond: (message_id = " in plan(sql)


def test_the_report_runs_with_index_friendly_costs_and_puts_them_back(sending):
    def setting(name: str) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting(%s)", [name])
            return cursor.fetchone()[0]

    before = setting("random_page_cost"), setting("jit")
    sqls = captured(lambda: campaign_report(sending))
    assert any("set_config('random_page_cost', '1.1', true)" in sql for sql in sqls)
    assert (setting("random_page_cost"), setting("jit")) == before
    # an error inside leaves nothing behind either (the savepoint's rollback undoes it)
    with pytest.raises(ZeroDivisionError), prefer_index_scans():
        1 / 0  # noqa: B018
    assert (setting("random_page_cost"), setting("jit")) == before


def test_messages_by_status_and_channel_are_read_from_their_index(newsletter):
    people = make_people(newsletter, 3, subscribed=False)
    OutboxMessage.objects.bulk_create(
        OutboxMessage(channel="email", to_address=p.email, contact=p, next_attempt_at=timezone.now()) for p in people
    )
    since = timezone.now() - timedelta(days=30)
    (sql,) = [sql for sql in captured(lambda: message_counts(since=since)) if "messaging_outboxmessage" in sql]
    found = plan(sql)
    assert "Seq Scan on messaging_outboxmessage" not in found
    assert "outbox_created_channel_status" in found, found
    assert message_counts(since=since)["total"] == 3


def test_the_automation_runs_are_listed_newest_first_from_their_index(client, admin_user, newsletter):
    flow = Automation.objects.create(name="Flow", trigger={"events": ["signed_up"]})
    AutomationRun.objects.bulk_create(
        AutomationRun(automation=flow, contact=p, trigger_key="k") for p in make_people(newsletter, 3, subscribed=False)
    )
    client.force_login(admin_user)
    sqls = captured(lambda: client.get("/admin/marketing/automationrun/"))
    (listing,) = [sql for sql in sqls if sql.startswith('SELECT "marketing_automationrun"."id"')]
    # with sorting off as well: only an index in the list's order can then avoid a Sort node
    found = plan(listing, off=("enable_seqscan", "enable_sort"))
    assert "automation_run_newest_first" in found and "Sort" not in found, found


def test_the_audit_filters_jump_through_the_index(client, admin_user):
    AuditEntry.objects.bulk_create(AuditEntry(verb=f"verb{n % 5}", target_type=f"type{n % 3}") for n in range(40))
    client.force_login(admin_user)
    sqls = [sql for sql in captured(lambda: client.get("/admin/messaging/auditentry/")) if "WITH RECURSIVE" in sql]
    assert len(sqls) == 2  # verb and object type
    for sql in sqls:
        found = plan(sql)
        assert "Seq Scan on messaging_auditentry" not in found and "Index Only Scan" in found, found
    types = distinct_values(AuditEntry.objects.all(), "target_type")
    assert types == sorted(set(AuditEntry.objects.values_list("target_type", flat=True)))
    assert {"type0", "type1", "type2"} <= set(types)
    assert "SELECT DISTINCT" not in " ".join(sqls)


def test_the_dashboard_estimates_a_big_count_and_says_about(rf, admin_user, newsletter, monkeypatch):
    make_people(newsletter, 12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_contact")
        cursor.execute("ANALYZE messaging_subscription")
    monkeypatch.setattr(queries, "EXACT_UP_TO", 5)  # a "big" table is anything past 5 rows here
    figures = queries.audience_figures()
    assert figures["contacts"].is_estimate and figures["contacts"].value >= 6
    assert not figures["suppressions"].is_estimate and figures["suppressions"].value == 0
    request = rf.get("/admin/")
    request.user = admin_user
    kpis = dashboard_callback(request, {})["kpis"]
    assert str(kpis[0]["value"]).startswith("about ")
    # the count before the estimate is capped: it never reads past the limit
    sqls = captured(queries.audience_figures)
    assert any("LIMIT 6" in sql for sql in sqls) and any(sql.startswith("EXPLAIN") for sql in sqls)
    assert not any(sql.startswith('SELECT COUNT(*) AS "__count" FROM "messaging_contact"') for sql in sqls)
