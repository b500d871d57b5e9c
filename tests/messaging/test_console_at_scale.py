"""The console's big lists stay cheap as tables grow: no full COUNT(*), no scan of distinct
values for a filter, searches and filters that an index serves (EXPLAIN on PostgreSQL).
Not timed: bench/console_scale.py measures the pages on a million contacts."""

import pytest
from django.db import connection
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext

from messaging.consent import subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.models import Contact, OutboxMessage, Subscription
from messaging.paging import CappedCountPaginator

pytestmark = pytest.mark.django_db

CONTACTS = "/admin/messaging/contact/"
OUTBOX = "/admin/messaging/outboxmessage/"


@pytest.fixture
def people(settings, newsletter):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
    made = [Contact.objects.create(email=f"person{n}@example.com", locale="fr" if n % 2 else "en") for n in range(12)]
    for contact in made[:5]:
        subscribe(actor=None, contact=contact, topic=newsletter)
    for contact in made:
        enqueue_message(channel="email", contact=contact, subject="Hello", text="Hi", topic=newsletter)
    return made


def listed_sql(client, url: str, table: str) -> tuple[int, list[str], str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response.status_code, [q["sql"] for q in queries.captured_queries if table in q["sql"]], response.content.decode()


def test_the_contact_list_never_counts_past_the_cap_and_lists_no_distinct_values(client, admin_user, people, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    client.force_login(admin_user)
    status, sql, _page = listed_sql(client, CONTACTS + "?language=fr", "messaging_contact")
    assert status == 200
    counts = [q for q in sql if "COUNT(" in q.upper()]
    assert counts and all("LIMIT 6" in q.upper() for q in counts)  # at most cap + 1 rows counted
    assert not any("DISTINCT" in q.upper() for q in sql)  # filters offer fixed choices, not the column's values


def test_the_topic_filter_and_the_prefix_search_find_the_right_contacts(client, admin_user, people, newsletter):
    client.force_login(admin_user)
    _s, _sql, page = listed_sql(client, CONTACTS + f"?subscribed_to={newsletter.pk}", "messaging_contact")
    assert all(f"person{n}@example.com" in page for n in range(5)) and "person7@example.com" not in page
    _s, _sql, page = listed_sql(client, CONTACTS + "?q=PERSON1", "messaging_contact")  # the beginning, any case
    assert "person1@example.com" in page and "person10@example.com" in page and "person2@example.com" not in page
    assert client.get(CONTACTS + "?subscribed_to=not-a-topic").status_code == 200  # a forged value lists nobody, no error


def test_the_outbox_search_matches_an_address_beginning_an_id_and_a_key(client, admin_user, people):
    client.force_login(admin_user)
    message = OutboxMessage.objects.get(to_address="person3@example.com")
    for term in ("person3@", "Person3@Example.com", f"#{message.pk}", "9" * 40):
        status, _sql, page = listed_sql(client, OUTBOX + "?q=" + term.replace("#", "%23"), "messaging_outboxmessage")
        assert status == 200
        assert ("person3@example.com" in page) == (term != "9" * 40), term


def test_the_query_count_of_the_big_lists_does_not_grow_with_rows(client, admin_user, people, newsletter, django_assert_max_num_queries):
    client.force_login(admin_user)
    for page, url in enumerate((CONTACTS, OUTBOX, "/admin/messaging/consentrecord/", "/admin/messaging/auditentry/")):
        with CaptureQueriesContext(connection) as few:
            assert client.get(url).status_code == 200
        for n in range(12, 30):
            contact = Contact.objects.create(email=f"more{page}-{n}@example.com")
            subscribe(actor=None, contact=contact, topic=newsletter)
            enqueue_message(channel="email", contact=contact, subject="Hello", text="Hi", topic=newsletter)
        with django_assert_max_num_queries(len(few.captured_queries)):
            assert client.get(url).status_code == 200


def plan(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # tiny test tables: show the index can serve it
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
def test_the_searches_and_the_topic_filter_are_served_by_indexes(people, newsletter):
    by_address = OutboxMessage.objects.filter(to_address__startswith="person3@").order_by("-id")[:50]
    assert "Seq Scan on messaging_outboxmessage" not in plan(*by_address.query.sql_with_params())
    by_email = Contact.objects.filter(email__startswith="person1").order_by("-created_at", "-id")[:50]
    assert "Seq Scan on messaging_contact" not in plan(*by_email.query.sql_with_params())
    subscribed = Subscription.objects.filter(contact=OuterRef("pk"), topic_id=newsletter.pk, status="subscribed")
    by_topic = Contact.objects.filter(Exists(subscribed)).order_by("-created_at", "-id")[:50]
    assert "Seq Scan on messaging_subscription" not in plan(*by_topic.query.sql_with_params())
