"""Analytics in a real browser: the page loads, plotly draws every chart (under the CSP),
a channel filter and a date-range change swap the figures through HTMX without a reload,
and a table's CSV export downloads. Screenshots: test-results/screenshots/analytics-*.png."""

import csv
import io
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from marketing.analytics.rollups import roll_up_recent
from messaging.models import DeliveryEvent
from tests.analytics.conftest import World, at
from tests.conftest import RESULTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = RESULTS / "screenshots"
CHARTS = ("chart-timeseries", "chart-funnel", "chart-channels", "chart-heatmap")
K = DeliveryEvent.Kind


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"analytics-{name}.png"), full_page=True)


@pytest.fixture
def activity(transactional_db, settings):
    """A few days of email and SMS with opens, clicks and one attributed order."""
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Paix, 75002 Paris"
    world = World()

    def days_ago(n):
        return world.today - timedelta(days=n)

    ada = world.contact("ada@example.com")
    for n in range(6):
        day = days_ago(n % 4)
        email = world.message(day=day, contact=ada if n == 0 else None, campaign_id=42 if n % 2 else None)
        world.event(email, K.DELIVERED, when=at(day, 9, 5))
        if n % 3 != 2:
            world.event(email, K.OPENED, when=at(day, 8 + n * 2))
        if n % 2 == 0:
            world.event(email, K.CLICKED, when=at(day, 8 + n * 2, 5))
    for n in range(3):
        sms = world.message(channel="sms", provider="twilio", day=days_ago(n), automation_id="welcome")
        world.event(sms, K.DELIVERED, when=at(days_ago(n), 10))
    world.order(ada, "49.90", when=at(days_ago(0), 20))
    roll_up_recent(days=7)
    return world


def plotted(page: Page, chart: str, trace: int = 0, axis: str = "x"):
    """What plotly actually drew: the data it holds on the chart's element."""
    return page.evaluate(f"() => document.querySelector('[data-testid={chart}]').data[{trace}].{axis}")


def test_analytics_page_draws_filters_without_reload_and_exports_csv(live_server, console_login, marketer, activity):
    page = console_login(marketer)
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    expect(page.locator("#nav-sidebar-inner a[href='/admin/analytics/'], nav a[href='/admin/analytics/']").first).to_be_attached()
    page.goto(f"{live_server.url}/admin/analytics/")
    expect(page.get_by_test_id("analytics-page")).to_be_visible()
    for chart in CHARTS:
        expect(page.locator(f"[data-testid={chart}] svg.main-svg").first).to_be_attached()
        expect(page.get_by_test_id(chart)).to_have_attribute("data-drawn", "yes")
    expect(page.get_by_test_id("kpi-sent")).to_have_text("9")
    assert plotted(page, "chart-funnel") == [9, 9, 4, 3, 1]
    shot(page, "dashboard")

    # a filter change: HTMX swaps the results, plotly redraws, the page never reloads
    page.evaluate("() => { window.__sameDocument = true; }")
    page.select_option("#id_channel", "sms")
    expect(page.get_by_test_id("analytics-results")).to_have_attribute("data-channel", "sms")
    expect(page.get_by_test_id("kpi-sent")).to_have_text("3")
    expect(page.get_by_test_id("chart-funnel")).to_have_attribute("data-drawn", "yes")
    page.wait_for_function("() => document.querySelector('[data-testid=chart-funnel]').data[0].x[0] === 3")
    assert plotted(page, "chart-funnel") == [3, 3, 0, 0, 0]
    assert plotted(page, "chart-channels", axis="labels") == ["sms"]
    assert page.evaluate("() => window.__sameDocument") is True
    assert "channel=sms" in page.url  # the filtered view can be bookmarked
    shot(page, "filtered-sms")

    # each table exports as CSV, with the filters in force
    with page.expect_download() as download:
        page.get_by_test_id("csv-automation_id").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [(row["automation_id"], row["sent"]) for row in rows] == [("welcome", "3")]
    assert download.value.suggested_filename.startswith("analytics-automation_id-")

    page.select_option("#id_channel", "")
    expect(page.get_by_test_id("kpi-sent")).to_have_text("9")
    with page.expect_download() as download:
        page.get_by_test_id("csv-daily").click()
    daily = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(daily) == 30 and sum(int(row["sent"]) for row in daily) == 9

    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_campaign_report_reuses_the_charts(live_server, console_login, marketer, activity):
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/analytics/")
    page.get_by_test_id("table-campaign_id").get_by_role("link", name="42").click()
    page.wait_for_url(f"{live_server.url}/admin/analytics/campaigns/42/")
    expect(page.get_by_test_id("analytics-page").locator("h1")).to_have_text("Campaign report: 42")
    expect(page.get_by_test_id("kpi-sent")).to_have_text("3")
    for chart in CHARTS:
        expect(page.locator(f"[data-testid={chart}] svg.main-svg").first).to_be_attached()
    shot(page, "campaign-report")


def test_a_date_range_change_redraws_the_charts_without_reload(live_server, console_login, marketer, activity):
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/analytics/")
    expect(page.get_by_test_id("chart-timeseries")).to_have_attribute("data-drawn", "yes")
    assert len(plotted(page, "chart-timeseries")) == 30  # the default period: the last 30 days
    page.evaluate("() => { window.__sameDocument = true; }")

    # a shorter period: the time series redraws with one point per day of it
    page.select_option("#id_range", "7")
    expect(page.get_by_test_id("analytics-results")).to_have_attribute("data-since", (activity.today - timedelta(days=6)).isoformat())
    page.wait_for_function("() => document.querySelector('[data-testid=chart-timeseries]').data[0].x.length === 7")
    assert plotted(page, "chart-timeseries")[-1] == activity.today.isoformat()
    expect(page.get_by_test_id("kpi-sent")).to_have_text("9")  # all the activity is in the last 4 days

    # a custom range of yesterday and today: fewer messages, and every chart redraws for it
    yesterday = activity.today - timedelta(days=1)
    page.select_option("#id_range", "custom")
    page.fill("#id_since", yesterday.isoformat())
    page.fill("#id_until", activity.today.isoformat())
    expect(page.get_by_test_id("analytics-results")).to_have_attribute("data-since", yesterday.isoformat())
    expect(page.get_by_test_id("analytics-results")).to_have_attribute("data-until", activity.today.isoformat())
    expect(page.get_by_test_id("kpi-sent")).to_have_text("6")  # 4 emails and 2 SMS on those two days
    page.wait_for_function("() => document.querySelector('[data-testid=chart-timeseries]').data[0].x.length === 2")
    assert plotted(page, "chart-timeseries") == [yesterday.isoformat(), activity.today.isoformat()]
    assert plotted(page, "chart-funnel")[0] == 6
    for chart in CHARTS:
        expect(page.get_by_test_id(chart)).to_have_attribute("data-drawn", "yes")
        expect(page.locator(f"[data-testid={chart}] svg.main-svg").first).to_be_attached()
    assert page.evaluate("() => window.__sameDocument") is True
    assert f"since={yesterday.isoformat()}" in page.url and "range=custom" in page.url
    shot(page, "range")
