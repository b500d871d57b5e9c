"""The analytics page's tables as django-tables2 tables: each table sorts on its own
parameters (`daily-sort`), pages by 50, exports through the same table with no formula left,
is refused to roles without analytics, and costs the same queries for 7 or 90 days."""

import csv
import io
from decimal import Decimal, InvalidOperation

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from lxml import html as lxml_html

from marketing.analytics.rollups import roll_up_recent
from marketing.templatetags.analytics import column_label
from marketing.views.analytics import COLUMNS, RATE_COLUMNS
from messaging.models import DeliveryEvent, Provider
from tests.analytics.conftest import at

pytestmark = pytest.mark.django_db
K = DeliveryEvent.Kind
EVIL = "=cmd|' /C calc'!A0"


@pytest.fixture
def busy(world, days_ago):
    """Different figures on three days, and a provider named like a formula."""
    world.providers[EVIL] = Provider.objects.create(name=EVIL, channel="email", kind=Provider.Kind.SANDBOX)
    for day, sent in ((days_ago(0), 1), (days_ago(2), 3), (days_ago(4), 2)):
        for n in range(sent):
            message = world.message(day=day, provider=EVIL if n == 0 else "ses", campaign_id=f"c{sent}")
            world.event(message, K.DELIVERED, when=at(day, 9, 5))
            if n == 0:
                world.event(message, K.OPENED, when=at(day, 10))
    roll_up_recent(days=5)
    return world


def table(page: str, name: str) -> tuple[list[str], list[list[str]]]:
    tree = lxml_html.fromstring(page)
    (found,) = tree.xpath(f'//table[@data-testid="table-{name}"]')
    header = [" ".join(th.text_content().split()) for th in found.xpath("./thead/tr/th")]
    rows = [
        [" ".join(td.text_content().split()) for td in tr.xpath("./td")] for tr in found.xpath('./tbody/tr[@data-testid="analytics-row"]')
    ]
    return header, rows


def number(cell: str):
    try:
        return Decimal(cell.replace(",", "."))
    except InvalidOperation:
        return cell


@pytest.mark.parametrize("column", ["day", *COLUMNS, *RATE_COLUMNS])
def test_the_per_day_table_sorts_by_each_column(client, marketer, busy, column):
    client.force_login(marketer)
    position = ["day", *COLUMNS, *RATE_COLUMNS].index(column)
    for sort, descending in ((column, False), (f"-{column}", True)):
        page = client.get("/admin/analytics/", {"range": "7", "daily-sort": sort}).content.decode()
        header, rows = table(page, "daily")
        assert header[position].startswith(column_label(column))  # the column's words, not its key
        values = [number(row[position]) for row in rows]
        assert len(rows) == 7
        assert values == sorted(values, reverse=descending), (sort, values)


def test_sorting_one_table_leaves_the_others_and_bad_keys_are_ignored(client, marketer, busy):
    client.force_login(marketer)
    default = table(client.get("/admin/analytics/", {"range": "7"}).content.decode(), "daily")[1]
    by_sent = client.get("/admin/analytics/", {"range": "7", "daily-sort": "-sent"}).content.decode()
    assert [row[1] for row in table(by_sent, "daily")[1]][:3] == ["3", "2", "1"]
    assert table(by_sent, "campaign_id")[1] == table(client.get("/admin/analytics/", {"range": "7"}).content.decode(), "campaign_id")[1]
    # the CSV link carries the filters and the sort; the other tables' sort links keep it too
    assert "/admin/analytics/export/daily/?range=7&amp;daily-sort=-sent" in by_sent
    assert "daily-sort=-sent&amp;channel-sort=channel" in by_sent or "channel-sort=channel&amp;daily-sort=-sent" in by_sent
    for bad in ("nope", "-__class__", "day,sent"):
        response = client.get("/admin/analytics/", {"range": "7", "daily-sort": bad})
        assert response.status_code == 200 and table(response.content.decode(), "daily")[1] == default
    # "Messages by status" ends with its total row: it does not sort
    stats = client.get("/admin/analytics/", {"message_stats-sort": "-total"}).content.decode()
    assert table(stats, "message_stats")[1][-1][0] == "Total" and 'data-sort="total"' not in stats


def test_the_per_day_table_pages_by_fifty(client, marketer, busy):
    client.force_login(marketer)
    first = client.get("/admin/analytics/", {"range": "90"}).content.decode()
    assert len(table(first, "daily")[1]) == 50 and "Page 1 of 2 (90 rows)" in first
    last = client.get("/admin/analytics/", {"range": "90", "daily-page": "9"}).content.decode()
    assert len(table(last, "daily")[1]) == 40
    # the other tables stay on their first page
    assert len(table(last, "campaign_id")[1]) == 3


def test_exports_keep_the_sort_and_neutralise_formulas(client, marketer, busy):
    client.force_login(marketer)
    response = client.get("/admin/analytics/export/daily/", {"range": "7", "daily-sort": "-sent", "daily-page": "2"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["sent"] for row in rows][:4] == ["3", "2", "1", "0"] and len(rows) == 7
    providers = list(csv.reader(io.StringIO(client.get("/admin/analytics/export/provider/", {"range": "7"}).content.decode())))
    assert providers[0][0] == "provider"
    assert sorted(row[0] for row in providers[1:]) == sorted(["'" + EVIL, "ses"])
    assert not [cell for row in providers for cell in row if cell[:1] in ("=", "+", "@")]
    # and on the page it is shown as text, escaped
    page = client.get("/admin/analytics/", {"range": "7"}).content.decode()
    assert EVIL.replace("'", "&#x27;") in page


@pytest.mark.parametrize("role", ["approver", "support"])
def test_roles_without_analytics_cannot_export(client, busy, role, request):
    client.force_login(request.getfixturevalue(role))
    for name in ("daily", "provider", "campaign_id"):
        response = client.get(f"/admin/analytics/export/{name}/", {"range": "7"})
        assert response.status_code == 403 and EVIL.encode() not in response.content


def test_the_page_costs_the_same_queries_for_a_week_or_a_quarter(client, marketer, busy, django_assert_max_num_queries):
    client.force_login(marketer)
    with CaptureQueriesContext(connection) as week:
        client.get("/admin/analytics/", {"range": "7"})
    with django_assert_max_num_queries(len(week)):
        client.get("/admin/analytics/", {"range": "90"})
    with CaptureQueriesContext(connection) as export_week:
        client.get("/admin/analytics/export/daily/", {"range": "7"})
    with django_assert_max_num_queries(len(export_week)):
        client.get("/admin/analytics/export/daily/", {"range": "90"})
