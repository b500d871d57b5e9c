"""An outbox message's text and HTML live in OutboxBody, apart from the status row that every
send writes twice. They are stored with their message (save, bulk_create, a fan-out's render),
read with a claim in the same query, read again after a refresh, and migration 0033 moved every
body that existed before it without losing one."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import claim_batch
from messaging.models import OutboxBody, OutboxMessage

pytestmark = pytest.mark.django_db

HTML = "<html><body><p>Hello Ada</p></body></html>"


def body_queries(queries) -> list[str]:
    return [query["sql"] for query in queries if OutboxBody._meta.db_table in query["sql"]]


def test_a_message_is_stored_with_its_body_and_one_without_a_body_stores_no_row(contact):
    message = enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Hello Ada", html=HTML)
    assert "<p>Hello Ada</p>" in message.body_html  # as stored (the open pixel added)
    assert list(OutboxBody.objects.values_list("message_id", "text", "html")) == [(message.pk, "Hello Ada", message.body_html)]
    bare = OutboxMessage.objects.create(channel="email", to_address="grace@example.com", next_attempt_at=timezone.now())
    assert not OutboxBody.objects.filter(message=bare).exists()
    reread = OutboxMessage.objects.get(pk=bare.pk)
    assert (reread.body_text, reread.body_html) == ("", "")


def test_changing_one_part_keeps_the_other_and_an_unchanged_message_never_writes_its_body(contact):
    message = enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Hello Ada", html=HTML)
    loaded = OutboxMessage.objects.get(pk=message.pk)
    with CaptureQueriesContext(connection) as queries:
        loaded.error = "noted"
        loaded.save()
    assert body_queries(queries) == []  # bodies never read, so never written
    loaded.body_html = "<p>Changed</p>"
    loaded.save()
    assert OutboxBody.objects.get(message=message).text == "Hello Ada"
    assert OutboxBody.objects.get(message=message).html == "<p>Changed</p>"
    with CaptureQueriesContext(connection) as queries:
        loaded.save()  # read and set to what is stored: nothing to write
    assert not [sql for sql in body_queries(queries) if not sql.lstrip().upper().startswith("SELECT")]


def test_update_fields_saves_the_body_only_when_it_is_named(contact):
    message = enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Hello Ada", html=HTML)
    loaded = OutboxMessage.objects.filter(pk=message.pk).with_bodies().get()
    loaded.body_text, loaded.error = "Changed", "noted"
    with CaptureQueriesContext(connection) as queries:
        loaded.save(update_fields=["error"])
    assert len(queries) == 1 and body_queries(queries) == []  # the UPDATE of the message, nothing else
    assert OutboxBody.objects.get(message=message).text == "Hello Ada"
    with CaptureQueriesContext(connection) as queries:
        loaded.save(update_fields=["body_text"])  # named: the body only, the message row untouched
    assert OutboxBody.objects.get(message=message).text == "Changed"
    assert not [query for query in queries.captured_queries if query["sql"].startswith('UPDATE "messaging_outboxmessage"')]
    assert OutboxMessage.objects.get(pk=message.pk).error == "noted"


def test_bulk_create_stores_the_bodies_given_and_none_for_empty_ones():
    now = timezone.now()
    created = OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(channel="email", to_address="a@example.com", body_text="A", next_attempt_at=now),
            OutboxMessage(channel="email", to_address="b@example.com", body_html="<p>B</p>", next_attempt_at=now),
            OutboxMessage(channel="email", to_address="c@example.com", next_attempt_at=now),
        ]
    )
    stored = {row.message_id: (row.text, row.html) for row in OutboxBody.objects.all()}
    assert stored == {created[0].pk: ("A", ""), created[1].pk: ("", "<p>B</p>")}


def test_a_claimed_batch_carries_its_bodies_without_a_query_per_message(contact):
    for n in range(5):
        enqueue_message(channel="email", to=f"r{n}@example.com", subject="Hi", text=f"Hello {n}", html=f"<p>{n}</p>")
    enqueue_message(channel="sms", to="+33612345678", subject="", text="SMS body")
    stored = {row.message_id: (row.text, row.html) for row in OutboxBody.objects.filter(message__channel="email")}
    batch = claim_batch(channel="email", limit=10, owner="test:1")
    with CaptureQueriesContext(connection) as queries:
        bodies = {m.pk: (m.body_text, m.body_html) for m in batch}
    assert len(queries) == 0
    assert bodies == stored and len(bodies) == 5 and all(text.startswith("Hello ") for text, _html in bodies.values())


def test_a_refresh_reads_the_body_again(contact):
    message = enqueue_message(channel="email", to=contact.email, contact=contact, subject="Hi", text="Before")
    assert message.body_text == "Before"
    OutboxBody.objects.filter(message=message).update(text="After")
    message.refresh_from_db(fields=["body_text"])
    assert message.body_text == "After"
    OutboxBody.objects.filter(message=message).delete()  # what retention and erasure do
    message.refresh_from_db()
    assert (message.body_text, message.body_html) == ("", "")


@pytest.mark.django_db(transaction=True)
def test_migration_0033_moves_every_existing_body_and_back():
    before, after = ("messaging", "0032_outbox_partial_indexes_no_fk_checks"), ("messaging", "0033_outbox_bodies_apart")
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([before])
        old = executor.loader.project_state([before]).apps.get_model("messaging", "OutboxMessage")
        now = timezone.now()
        rows = [
            old.objects.create(channel="email", to_address="a@example.com", body_text="Text A", body_html="<p>A</p>", next_attempt_at=now),
            old.objects.create(channel="sms", to_address="+33600000000", body_text="SMS é ✓", next_attempt_at=now),
            old.objects.create(channel="email", to_address="c@example.com", next_attempt_at=now),  # no body
        ]
        executor = MigrationExecutor(connection)
        executor.migrate([after])
        new = executor.loader.project_state([after]).apps.get_model("messaging", "OutboxBody")
        moved = {row.message_id: (row.text, row.html) for row in new.objects.all()}
        assert moved == {rows[0].pk: ("Text A", "<p>A</p>"), rows[1].pk: ("SMS é ✓", "")}
        # and back: the columns come back filled, the empty one empty
        executor = MigrationExecutor(connection)
        executor.migrate([before])
        restored = dict(old.objects.values_list("pk", "body_text"))
        assert restored == {rows[0].pk: "Text A", rows[1].pk: "SMS é ✓", rows[2].pk: ""}
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
