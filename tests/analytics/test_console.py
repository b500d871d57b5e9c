"""The analytics pages: figures from the rollup, HTMX partials, chart JSON, CSV exports."""

import csv
import io
import re
from decimal import Decimal

import pytest

from marketing.analytics.rollups import roll_up_recent
from messaging.models import DeliveryEvent
from tests.analytics.conftest import at

pytestmark = pytest.mark.django_db
K = DeliveryEvent.Kind


@pytest.fixture
def rolled_up(world, days_ago):
    ada = world.contact("ada@example.com")
    email = world.message(day=days_ago(1), contact=ada, campaign_id=42)
    sms = world.message(channel="sms", provider="twilio", day=days_ago(0), automation_id="welcome")
    world.event(email, K.DELIVERED, when=at(days_ago(1), 9, 5))
    world.event(email, K.OPENED, when=at(days_ago(1), 10))
    world.event(email, K.CLICKED, when=at(days_ago(1), 10, 1))
    world.event(sms, K.DELIVERED, when=at(days_ago(0), 9, 30))
    world.order(ada, "25.50", when=at(days_ago(1), 18))
    roll_up_recent(days=2)
    return world


def test_dashboard_shows_the_rolled_up_figures(client, marketer, rolled_up):
    client.force_login(marketer)
    response = client.get("/admin/analytics/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="kpi-sent">2<' in page
    assert 'data-testid="kpi-revenue">€25.50<' in page
    for chart in ("chart-timeseries", "chart-funnel", "chart-channels", "chart-heatmap"):
        assert f'id="{chart}" type="application/json"' in page
    assert "vendor/plotly.min.js" in page and "mailroom/charts.js" in page
    assert not re.search(r"https?://[^\s\"']*cdn", page.lower())  # no CDN URL (a CSRF token may hold the letters "cdn")


def test_filter_change_through_htmx_returns_only_the_results(client, marketer, rolled_up):
    client.force_login(marketer)
    response = client.get("/admin/analytics/", {"range": "7", "channel": "sms"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="analytics-results"')
    assert 'data-channel="sms"' in page and 'data-testid="kpi-sent">1<' in page
    assert "<html" not in page


def test_a_far_off_custom_range_falls_back_to_the_last_30_days(client, marketer, rolled_up):
    client.force_login(marketer)
    for since, until in (("0001-01-01", "0001-01-06"), ("9999-12-01", "9999-12-31")):
        query = {"range": "custom", "since": since, "until": until, "table": "message_stats"}
        assert client.get("/admin/analytics/", query).status_code == 200
        series = client.get("/admin/analytics/charts/timeseries/", query).json()
        assert len(series["data"][0]["x"]) == 30 and sum(series["data"][0]["y"]) == 2


def test_chart_endpoints_return_plotly_figures(client, marketer, rolled_up):
    client.force_login(marketer)
    funnel = client.get("/admin/analytics/charts/funnel/").json()
    assert funnel["data"][0]["type"] == "funnel"
    assert funnel["data"][0]["x"] == [2, 2, 1, 1, 1]
    series = client.get("/admin/analytics/charts/timeseries/", {"range": "7"}).json()
    assert [trace["name"] for trace in series["data"]] == ["Sent", "Delivered", "Opened", "Clicked"]
    assert len(series["data"][0]["x"]) == 7 and sum(series["data"][0]["y"]) == 2
    mix = client.get("/admin/analytics/charts/channels/").json()
    assert dict(zip(mix["data"][0]["labels"], mix["data"][0]["values"], strict=True)) == {"email": 1, "sms": 1}
    heat = client.get("/admin/analytics/charts/heatmap/").json()
    grid = heat["data"][0]["z"]
    assert len(grid) == 7 and len(grid[0]) == 24 and sum(map(sum, grid)) == 1
    only_sms = client.get("/admin/analytics/charts/funnel/", {"channel": "sms"}).json()
    assert only_sms["data"][0]["x"] == [1, 1, 0, 0, 0]
    campaign = client.get("/admin/analytics/charts/funnel/", {"campaign_id": "42"}).json()
    assert campaign["data"][0]["x"] == [1, 1, 1, 1, 1]
    assert client.get("/admin/analytics/charts/nope/").status_code == 404


def test_each_table_exports_as_csv(client, marketer, rolled_up):
    client.force_login(marketer)
    for table in ("daily", "channel", "provider", "topic", "campaign_id", "automation_id", "message_stats"):
        response = client.get(f"/admin/analytics/export/{table}/", {"range": "7"})
        assert response.status_code == 200, table
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0], table
    campaigns = list(csv.DictReader(io.StringIO(client.get("/admin/analytics/export/campaign_id/").content.decode())))
    assert [(row["campaign_id"], row["sent"], Decimal(row["revenue"])) for row in campaigns] == [("42", "1", Decimal("25.50"))]
    stats = list(csv.reader(io.StringIO(client.get("/admin/analytics/export/message_stats/").content.decode())))
    assert stats[-1][:2] == ["Total", "2"]


def test_campaign_and_automation_reports_reuse_the_page(client, marketer, rolled_up):
    client.force_login(marketer)
    page = client.get("/admin/analytics/campaigns/42/").content.decode()
    assert "Campaign report: 42" in page and 'data-testid="kpi-sent">1<' in page and 'id="chart-funnel"' in page
    assert "campaign_id=42" in page  # its CSV links keep the campaign
    page = client.get("/admin/analytics/automations/welcome/").content.decode()
    assert "Automation report: welcome" in page and 'data-testid="kpi-sent">1<' in page


def test_pages_need_the_analytics_permission(client, approver, rolled_up):
    client.force_login(approver)
    for url in ("/admin/analytics/", "/admin/analytics/charts/funnel/", "/admin/analytics/export/daily/", "/admin/analytics/campaigns/42/"):
        assert client.get(url).status_code == 403, url
    client.logout()
    assert client.get("/admin/analytics/").status_code == 302
