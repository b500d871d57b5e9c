"""Analytics tables speak to people (issue 18, item 6): "Unique opens", not opened_unique;
the CSV export keeps the keys scripts read."""

import csv
import io
import re

import pytest

from tests.analytics.test_console import rolled_up  # noqa: F401 (fixture)
from tests.support.visible_text import visible_text

pytestmark = pytest.mark.django_db


def headers(html: str) -> list[str]:
    return [visible_text(cell) for cell in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S)]


def test_table_headers_are_labels_and_the_csv_keeps_keys(client, marketer, rolled_up):  # noqa: F811
    client.force_login(marketer)
    page = client.get("/admin/analytics/", {"range": "7"}).content.decode()
    shown = headers(page)
    assert {"Day", "Unique opens", "Unique clicks", "Open rate", "Campaign", "Automation", "Queued", "Suppressed"} <= set(shown)
    snake = [header for header in shown if "_" in header]
    assert snake == []
    csv_header = next(csv.reader(io.StringIO(client.get("/admin/analytics/export/daily/", {"range": "7"}).content.decode())))
    assert csv_header[:4] == ["day", "sent", "delivered", "opened_unique"]
