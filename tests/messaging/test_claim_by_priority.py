"""The claim reads queued messages by priority, then by when they are due, through the
partial outbox_queued index: one range scan per priority, never a pass over the whole due
backlog (EXPLAIN on SQLite and PostgreSQL; not timed). A priority the claim would not look
up is refused when the message is queued, and the queue's lag is still the oldest due."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from messaging.delivery.bulk import insert_messages_sql
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import claim_batch
from messaging.errors import InvalidInput
from messaging.health import oldest_due_at
from messaging.models import OutboxMessage

pytestmark = pytest.mark.django_db

Priority = OutboxMessage.Priority


@pytest.fixture(autouse=True)
def _quiet_cluster(settings):
    settings.MAILROOM_KICK_CLUSTER = False


def queue(to: str, priority: int, *, due_in: timedelta = timedelta(0)) -> OutboxMessage:
    message = enqueue_message(channel="email", to=to, subject="Hi", text="Hi", priority=priority)
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() + due_in)
    return message


def test_the_most_urgent_due_messages_are_claimed_first_then_the_oldest():
    bulk_old = queue("bulk-old@example.com", Priority.BULK, due_in=timedelta(minutes=-10))
    bulk_new = queue("bulk-new@example.com", Priority.BULK, due_in=timedelta(minutes=-1))
    receipt = queue("receipt@example.com", Priority.TRANSACTIONAL, due_in=timedelta(seconds=-1))
    queue("later@example.com", Priority.TRANSACTIONAL, due_in=timedelta(hours=1))  # not due yet
    normal = queue("normal@example.com", Priority.NORMAL, due_in=timedelta(minutes=-5))
    claimed = claim_batch(channel="email", limit=3, owner="test:1")
    assert [m.pk for m in claimed] == [receipt.pk, normal.pk, bulk_old.pk]
    assert [m.pk for m in claim_batch(channel="email", limit=10, owner="test:2")] == [bulk_new.pk]


def test_the_queue_lag_is_the_oldest_due_message_whatever_its_priority():
    assert oldest_due_at() is None
    queue("bulk@example.com", Priority.BULK, due_in=timedelta(minutes=-3))
    oldest = queue("high@example.com", Priority.HIGH, due_in=timedelta(minutes=-7))
    queue("later@example.com", Priority.TRANSACTIONAL, due_in=timedelta(hours=1))
    assert oldest_due_at() == OutboxMessage.objects.get(pk=oldest.pk).next_attempt_at


@pytest.mark.parametrize("priority", [1, -1, 99])
def test_a_priority_the_claim_never_looks_up_is_refused_and_nothing_is_queued(priority):
    with pytest.raises(InvalidInput, match="Unknown priority"):
        enqueue_message(channel="email", to="ada@example.com", subject="Hi", text="Hi", priority=priority)
    with pytest.raises(ValueError, match="unknown priority"):
        insert_messages_sql(
            select_sql="SELECT 1",
            params=[],
            channel="email",
            from_address="",
            topic_id=None,
            is_marketing=False,
            now=timezone.now(),
            priority=priority,
        )
    assert not OutboxMessage.objects.exists()


def test_each_priority_is_one_range_scan_of_the_queued_index():
    for n in range(20):
        queue(f"reader{n}@example.com", Priority.BULK)
    query = (
        OutboxMessage.objects.filter(channel="email", status="queued", priority=Priority.TRANSACTIONAL, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:500]
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "INDEX outbox_queued (priority=? AND next_attempt_at<?)" in plan, plan
        else:  # a tiny test table is read whole unless scans are priced out
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "outbox_queued" in plan and "Index Cond: ((priority = " in plan and "Seq Scan" not in plan, plan
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan  # read in order, not sorted
