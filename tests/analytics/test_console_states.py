"""The analytics page's states, through HTTP as a marketer: an empty period shows empty
states (not plotly's bare −1..1 axes), money carries its currency in the language's format,
French figures use a decimal comma, explicit dates mean a custom period, and bad dates get
a clear message instead of a silent fallback."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.analytics import charts
from messaging.models import DeliveryEvent
from tests.analytics.test_console import rolled_up  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
K = DeliveryEvent.Kind
CHARTS = ("chart-timeseries", "chart-funnel", "chart-channels", "chart-heatmap")
NBSP, NNBSP = "\xa0", "\u202f"


def results(client, **query):
    response = client.get("/admin/analytics/", query, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response, response.content.decode()


def test_an_empty_period_shows_an_empty_state_instead_of_each_chart(client, marketer, world):
    client.force_login(marketer)
    response, page = results(client)
    assert all(chart["empty"] for chart in response.context["charts"])
    for chart in CHARTS:
        assert f'data-testid="{chart}" data-empty="yes"' in page
        assert f'id="{chart}" type="application/json"' not in page  # nothing for plotly to draw
    assert page.count("No data for this period.") == 4


def test_only_the_charts_without_data_are_replaced(client, marketer, rolled_up):  # noqa: F811
    client.force_login(marketer)
    response, page = results(client, channel="sms")  # one SMS delivered, never opened
    empty = {chart["id"]: chart["empty"] for chart in response.context["charts"]}
    assert empty == {"chart-timeseries": False, "chart-funnel": False, "chart-channels": False, "chart-heatmap": True}
    assert 'id="chart-funnel" type="application/json"' in page and 'data-testid="chart-heatmap" data-empty="yes"' in page


@pytest.mark.parametrize(
    ("trace", "empty"),
    [
        ({"type": "scatter", "y": [0, 0, 0]}, True),
        ({"type": "scatter", "y": [0, 2, 0]}, False),
        ({"type": "bar", "y": []}, True),
        ({"type": "bar", "orientation": "h", "x": [0, 3], "y": ["a", "b"]}, False),
        ({"type": "funnel", "x": [0, 0, 0], "y": ["Sent", "Opened", "Clicked"]}, True),
        ({"type": "pie", "values": [], "labels": []}, True),
        ({"type": "heatmap", "z": [[0] * 24 for _ in range(7)]}, True),
        ({"type": "heatmap", "z": [[0] * 23 + [1]] + [[0] * 24] * 6}, False),
    ],
)
def test_a_figure_is_empty_when_no_trace_holds_a_number_other_than_zero(trace, empty):
    assert charts.is_empty({"data": [trace]}) is empty
    assert charts.is_empty({"data": []}) is True


def test_revenue_shows_its_currency_in_the_active_language(client, marketer, rolled_up, settings):  # noqa: F811
    client.force_login(marketer)
    page = client.get("/admin/analytics/").content.decode()
    assert 'data-testid="kpi-revenue">€25.50<' in page
    page = client.get("/admin/analytics/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert f'data-testid="kpi-revenue">25,50{NBSP}€<' in page
    settings.MAILROOM_CURRENCY = "USD"
    page = client.get("/admin/analytics/").content.decode()
    assert 'data-testid="kpi-revenue">$25.50<' in page


def test_french_figures_use_a_decimal_comma_on_the_page_and_in_the_charts(client, marketer, rolled_up):  # noqa: F811
    # given 1 open out of 2 delivered messages, 1 click: 50.0 % in English
    client.force_login(marketer)
    english = client.get("/admin/analytics/").content.decode()
    assert "50.0 %" in english
    response = client.get("/admin/analytics/", HTTP_ACCEPT_LANGUAGE="fr")
    french = response.content.decode()
    assert "50,0 %" in french and "50.0 %" not in french
    # plotly formats its own numbers (hover, funnel percentages) with the same separators
    for chart in response.context["charts"]:
        assert chart["figure"]["layout"]["separators"] == f",{NBSP}"
    funnel = json.loads(french.split('id="chart-funnel" type="application/json">')[1].split("</script>")[0])
    assert funnel["layout"]["separators"] == f",{NBSP}"


def test_a_from_date_alone_means_a_custom_period_up_to_today(client, marketer, rolled_up, days_ago):  # noqa: F811
    client.force_login(marketer)
    # the Period select still says 30 days (a browser without JavaScript sends it as it was)
    response, page = results(client, range="30", since=days_ago(1).isoformat())
    assert response.context["filters"].since == days_ago(1) and response.context["filters"].until == days_ago(0)
    assert response.context["form"]["range"].value() == "custom"
    assert f'data-since="{days_ago(1).isoformat()}"' in page and f'data-until="{days_ago(0).isoformat()}"' in page
    # the full page shows Custom selected
    full = client.get("/admin/analytics/", {"range": "7", "since": days_ago(1).isoformat()}).content.decode()
    assert '<option value="custom" selected>' in full and '<option value="7" selected>' not in full


def test_a_to_date_alone_means_the_30_days_up_to_it(client, marketer, rolled_up, days_ago):  # noqa: F811
    client.force_login(marketer)
    response, _page = results(client, until=days_ago(3).isoformat())
    assert (response.context["filters"].since, response.context["filters"].until) == (days_ago(32), days_ago(3))
    assert response.context["filter_problems"] == []


def test_a_preset_period_without_dates_is_still_a_preset(client, marketer, rolled_up, days_ago):  # noqa: F811
    client.force_login(marketer)
    response, _page = results(client, range="7", since="", until="")
    assert (response.context["filters"].since, response.context["filters"].until) == (days_ago(6), days_ago(0))
    assert response.context["form"]["range"].value() == "7"


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"since": "2026-13-45"}, "From: Enter a valid date."),
        ({"since": "yesterday", "until": "2026-01-01"}, "From: Enter a valid date."),
        ({"range": "custom", "until": "0001-01-01"}, "To: Pick a day between 1970-01-01 and 2999-12-31."),
        ({"since": "2026-03-10", "until": "2026-03-01"}, "The From date must be on or before the To date."),
    ],
)
def test_bad_dates_say_what_is_wrong_and_show_the_last_30_days(client, marketer, rolled_up, days_ago, query, said):  # noqa: F811
    client.force_login(marketer)
    response, page = results(client, **query)
    assert response.context["filter_problems"] == [said, "Showing the last 30 days instead."]
    assert 'data-testid="analytics-filter-problems"' in page and said in page
    assert (response.context["filters"].since, response.context["filters"].until) == (days_ago(29), days_ago(0))
    assert 'data-testid="kpi-sent">2<' in page  # and the figures of that period


def test_a_range_longer_than_a_year_is_cut_and_says_so(client, marketer, rolled_up, days_ago):  # noqa: F811
    client.force_login(marketer)
    response, page = results(client, since="2020-01-01", until=days_ago(0).isoformat())
    assert response.context["filters"].since == days_ago(365)
    assert response.context["filter_problems"] == ["A report covers at most 366 days: showing the last 366 up to the To date."]
    assert "A report covers at most 366 days" in page


def test_csv_export_and_chart_endpoint_follow_the_same_period_rules(client, marketer, rolled_up, days_ago):  # noqa: F811
    client.force_login(marketer)
    since = days_ago(1).isoformat()
    export = client.get("/admin/analytics/export/daily/", {"range": "90", "since": since})
    assert export.status_code == 200 and f"analytics-daily-{since}-{days_ago(0).isoformat()}.csv" in export["Content-Disposition"]
    figure = client.get("/admin/analytics/charts/timeseries/", {"range": "90", "since": since}).json()
    assert figure["data"][0]["x"] == [since, days_ago(0).isoformat()]


def test_the_hourly_axis_is_whole_hours_even_for_one_hour_of_events():
    one = timezone.localtime().replace(minute=0, second=0, microsecond=0, tzinfo=None)
    axis = charts.hourly_axis([one])
    assert axis["dtick"] == 3_600_000 and axis["type"] == "date"
    assert axis["range"] == [(one - timedelta(hours=1)).isoformat(), (one + timedelta(hours=1)).isoformat()]
    assert axis["tick0"].endswith(":00:00")
    week = charts.hourly_axis([one, one + timedelta(days=7)])
    assert week["dtick"] % 3_600_000 == 0 and (7 * 24 + 2) * 3_600_000 / week["dtick"] <= 8
    assert charts.hourly_axis([]) == {}
