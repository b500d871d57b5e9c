"""GET /api/v1/analytics/{overview,daily,campaigns,automations}/ from the rollup."""

import pytest

from marketing.analytics.rollups import roll_up_recent
from messaging.models import DeliveryEvent
from tests.analytics.conftest import at
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
K = DeliveryEvent.Kind
OVERVIEW = "/api/v1/analytics/overview/"


@pytest.fixture
def rolled_up(world, days_ago):
    ada = world.contact("ada@example.com")
    email = world.message(day=days_ago(1), contact=ada, campaign_id=42)
    world.message(channel="sms", provider="twilio", day=days_ago(0), automation_id="welcome", status="failed")
    world.event(email, K.DELIVERED, when=at(days_ago(1), 9, 5))
    world.event(email, K.OPENED, when=at(days_ago(1), 10))
    world.event(email, K.OPENED, when=at(days_ago(1), 10, 5), automated=True)
    world.event(email, K.CLICKED, when=at(days_ago(1), 10, 1))
    world.order(ada, "25.50", when=at(days_ago(1), 18))
    roll_up_recent(days=2)
    return world


def test_overview_has_totals_rates_queue_and_providers(as_user, marketer, rolled_up):
    body = as_user(marketer).get(OVERVIEW).json()
    figures = body["range"]
    assert (figures["sent"], figures["failed"], figures["delivered"], figures["opened_unique"], figures["opened_total"]) == (1, 1, 1, 1, 1)
    assert figures["open_rate"] == 1.0 and figures["click_rate"] == 1.0 and figures["bounce_rate"] == 0.0
    assert figures["revenue"] == "25.50" and figures["conversions"] == 1
    assert body["today"]["queued"] == 1 and body["today"]["failed"] == 1
    assert {row["channel"]: row["queued"] for row in body["by_channel"]} == {"email": 1, "sms": 1}
    assert set(body["queue"]) >= {"queued", "sending", "sent_last_hour", "per_minute"}
    assert {p["name"]: p["state"] for p in body["providers"]} == {"ses": "healthy", "twilio": "healthy"}
    assert body["computed_at"]


def test_overview_filters_by_channel_and_range(as_user, ops, rolled_up, days_ago):
    client = as_user(ops)
    assert client.get(OVERVIEW, {"channel": "sms"}).json()["range"]["queued"] == 1
    today_only = client.get(OVERVIEW, {"since": days_ago(0).isoformat()}).json()
    assert today_only["range"]["sent"] == 0 and today_only["range"]["queued"] == 1


def test_daily_campaigns_and_automations(as_user, marketer, rolled_up, days_ago):
    client = as_user(marketer)
    days = client.get("/api/v1/analytics/daily/", {"since": days_ago(2).isoformat()}).json()
    assert [(d["day"], d["queued"]) for d in days] == [
        (days_ago(2).isoformat(), 0),
        (days_ago(1).isoformat(), 1),
        (days_ago(0).isoformat(), 1),
    ]
    campaigns = client.get("/api/v1/analytics/campaigns/").json()
    assert [(c["campaign_id"], c["sent"], c["clicked_unique"], c["revenue"]) for c in campaigns] == [("42", 1, 1, "25.50")]
    automations = client.get("/api/v1/analytics/automations/").json()
    assert [(a["automation_id"], a["failed"]) for a in automations] == [("welcome", 1)]


def test_bad_range_is_a_400_with_field_errors(as_user, marketer, days_ago):
    client = as_user(marketer)
    body = assert_problem(client.get(OVERVIEW, {"since": days_ago(0).isoformat(), "until": days_ago(3).isoformat()}), 400)
    assert "until" in body["fields"]
    assert "since" in assert_problem(client.get(OVERVIEW, {"since": "yesterday"}), 400)["fields"]
    assert "channel" in assert_problem(client.get(OVERVIEW, {"channel": "pigeon"}), 400)["fields"]
    assert "since" in assert_problem(client.get(OVERVIEW, {"since": "2020-01-01", "until": "2023-01-01"}), 400)["fields"]


@pytest.mark.parametrize("query", [{"until": "0001-01-06"}, {"since": "0001-01-01"}, {"until": "9999-12-31"}])
def test_far_off_days_are_a_400_not_an_overflow(as_user, marketer, query):
    """Found by schemathesis: `?until=0001-01-06` was a 500 (29 days before it is no date)."""
    client = as_user(marketer)
    for url in (OVERVIEW, "/api/v1/analytics/daily/", "/api/v1/analytics/campaigns/"):
        body = assert_problem(client.get(url, query), 400)
        assert "between 1970-01-01 and 2999-12-31" in str(body["fields"][next(iter(query))])


def test_analytics_need_the_permission(api, as_user, approver, support):
    for url in (OVERVIEW, "/api/v1/analytics/daily/", "/api/v1/analytics/campaigns/", "/api/v1/analytics/automations/"):
        assert_problem(as_user(approver).get(url), 403)
        assert_problem(as_user(support).get(url), 403)
        assert_problem(api.get(url), 401)


def test_api_keys_with_the_ops_role_can_read_the_overview(key_client, db):
    assert key_client("Ops").get(OVERVIEW).status_code == 200
