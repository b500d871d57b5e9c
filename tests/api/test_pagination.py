"""The API's pages on big tables: capped counts, numbered pages up to the cap, and past it a
keyset cursor that walks every row once, in order, without counting or an OFFSET."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.delivery.outbox import enqueue_message
from messaging.models import OutboxMessage
from messaging.paging import CappedCountPaginator

pytestmark = pytest.mark.django_db
URL = "/api/v1/messages/"


@pytest.fixture
def twelve_messages(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    return [enqueue_message(channel="email", to=f"p{n}@example.com", subject=f"#{n}", text="Hi").pk for n in range(12)]


def walk(client, url: str) -> tuple[list[int], list[dict]]:
    ids, pages = [], []
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.content
        pages.append(answer.json())
        ids += [row["id"] for row in pages[-1]["results"]]
        url = pages[-1]["next"]
    return ids, pages


def test_a_small_list_is_counted_exactly(as_user, ops, twelve_messages):
    body = as_user(ops).get(URL, {"page_size": 5}).json()
    assert body["count"] == 12 and body["count_is_estimate"] is False and len(body["results"]) == 5


def test_past_the_cap_numbered_pages_stop_and_a_cursor_walks_every_row_once(as_user, ops, twelve_messages, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    client = as_user(ops)
    first = client.get(URL, {"page_size": 2, "status": "queued"}).json()
    assert first["count"] == 6 and first["count_is_estimate"] is True  # "more than 5"
    assert client.get(URL, {"page_size": 2, "status": "queued", "page": 3}).status_code == 404  # numbered pages stop at the cap
    ids, pages = walk(client, "http://testserver" + URL + "?page_size=2&status=queued")
    assert "cursor=" in pages[1]["next"] and "page=" not in pages[1]["next"]  # page 2 of 2 hands over to the cursor
    assert ids == sorted(twelve_messages, reverse=True)  # every row once, newest first, nothing skipped
    assert pages[-1]["next"] is None and pages[-1]["count"] is None


def test_a_cursor_page_neither_counts_nor_offsets_past_one_page(as_user, ops, twelve_messages, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    client = as_user(ops)
    cursor_url = client.get(URL, {"page_size": 2, "page": 2}).json()["next"]
    with CaptureQueriesContext(connection) as queries:
        body = client.get(cursor_url).json()
    listed = [q["sql"] for q in queries.captured_queries if "messaging_outboxmessage" in q["sql"]]
    assert len(body["results"]) == 2
    assert listed and not any("COUNT(" in sql.upper() for sql in listed)
    offsets = [int(found) for sql in listed for found in re.findall(r"OFFSET (\d+)", sql.upper())]
    assert all(offset <= 2 for offset in offsets)  # at most the rows of one page that share a position


def test_a_forged_cursor_is_a_clear_404(as_user, ops, twelve_messages):
    answer = as_user(ops).get(URL, {"cursor": "not-a-cursor"})
    assert answer.status_code == 404 and "cursor" in answer.json()["detail"].lower()


@pytest.mark.postgres
def test_a_cursor_page_of_the_outbox_reads_the_primary_key_index(as_user, ops, twelve_messages):
    """The keyset query (id < position ORDER BY id DESC LIMIT n) is an index range scan."""
    position = sorted(twelve_messages)[6]
    query = OutboxMessage.objects.filter(id__lt=position).order_by("-id")[:50]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: make the planner show it can
        cursor.execute(f"EXPLAIN {query.query}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "messaging_outboxmessage_pkey" in plan and "Seq Scan" not in plan
