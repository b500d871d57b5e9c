"""Segments, events and orders through the API."""

import pytest

from marketing.models import Event, Order, Segment
from messaging.contacts import create_contact
from messaging.models import Contact
from tests.api.conftest import assert_problem

RULES = {
    "type": "group",
    "op": "and",
    "rules": [{"type": "rule", "field": "attribute", "key": "lifecycle_stage", "operator": "equals", "value": "customer"}],
}


@pytest.fixture
def people(db):
    return [
        create_contact(actor=None, email=f"p{i}@example.com", attributes={"lifecycle_stage": "customer" if i < 2 else "lead"})
        for i in range(3)
    ]


def test_marketer_creates_refreshes_and_lists_a_segment(as_user, marketer, people):
    client = as_user(marketer)
    created = client.post("/api/v1/segments/", {"name": "Customers", "rules": RULES}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    refreshed = client.post(f"/api/v1/segments/{pk}/refresh/")
    assert refreshed.json()["member_count"] == 2
    members = client.get(f"/api/v1/segments/{pk}/contacts/").json()
    assert sorted(c["email"] for c in members["results"]) == ["p0@example.com", "p1@example.com"]


def test_a_bad_rule_is_a_400_naming_it_and_nothing_is_saved(as_user, marketer, people):
    bad = {"type": "group", "op": "and", "rules": [{"type": "rule", "field": "shoe_size", "operator": "equals", "value": "42"}]}
    body = assert_problem(as_user(marketer).post("/api/v1/segments/", {"name": "Bad", "rules": bad}, format="json"), 400)
    assert "Rule 1: unknown field “shoe_size”." in body["detail"]
    assert not Segment.objects.exists()


def test_preview_counts_without_saving(as_user, approver, people):
    response = as_user(approver).post("/api/v1/segments/preview/", {"rules": RULES}, format="json")
    assert response.status_code == 200 and response.json()["count"] == 2
    assert not Segment.objects.exists()


def test_approver_reads_but_cannot_create_segments(as_user, approver, people):
    assert as_user(approver).get("/api/v1/segments/").status_code == 200
    assert_problem(as_user(approver).post("/api/v1/segments/", {"name": "X"}, format="json"), 403)


def test_support_cannot_see_segments_and_anonymous_is_401(as_user, support, api, people):
    assert_problem(as_user(support).get("/api/v1/segments/"), 403)
    assert_problem(api.get("/api/v1/segments/"), 401)


def test_static_members_through_the_api(as_user, marketer, people):
    client = as_user(marketer)
    pk = client.post("/api/v1/segments/", {"name": "Picked", "kind": "static"}, format="json").json()["id"]
    response = client.post(f"/api/v1/segments/{pk}/members/", {"contacts": ["p2@example.com", "ghost@example.com"]}, format="json")
    assert response.json()["added"] == 1 and response.json()["unknown"] == ["ghost@example.com"]
    assert_problem(client.get("/api/v1/segments/999999/"), 404)


def test_events_are_idempotent_by_key_and_batched(key_client, people):
    client = key_client("Ops")
    one = {"email": "p0@example.com", "name": "lesson_completed", "idempotency_key": "evt-1", "properties": {"lesson": 3}}
    first = client.post("/api/v1/events/", one, format="json")
    again = client.post("/api/v1/events/", one, format="json")
    assert first.status_code == 201 and again.status_code == 200 and first.json()["id"] == again.json()["id"]
    batch = client.post(
        "/api/v1/events/",
        {"events": [one, {"email": "new@example.com", "name": "user_registered", "idempotency_key": "evt-2"}]},
        format="json",
    )
    assert batch.status_code == 201
    assert [item["created"] for item in batch.json()] == [False, True]
    assert Event.objects.count() == 2


def test_a_bad_event_in_a_batch_records_none(key_client, people):
    client = key_client("Ops")
    batch = {"events": [{"email": "p0@example.com", "name": "ok_event"}, {"email": "p0@example.com", "name": "bad name!"}]}
    assert_problem(client.post("/api/v1/events/", batch, format="json"), 400)
    batch = {"events": [{"email": "p0@example.com", "name": "ok_event"}, {"name": "no_contact"}]}
    body = assert_problem(client.post("/api/v1/events/", batch, format="json"), 400)
    assert "events.1.contact" in body["fields"]
    assert not Event.objects.exists()


def test_orders_record_status_changes_as_events(key_client, people):
    client = key_client("Ops")
    order = {"email": "p1@example.com", "order_id": "ORD-1", "amount": "49.90", "status": "pending"}
    assert client.post("/api/v1/orders/", order, format="json").status_code == 201
    assert client.post("/api/v1/orders/", {**order, "status": "paid"}, format="json").status_code == 200
    assert Order.objects.get(external_id="ORD-1").status == "paid"
    assert list(Event.objects.order_by("id").values_list("name", flat=True)) == ["order_pending", "order_paid"]
    assert_problem(client.post("/api/v1/orders/", {**order, "amount": "-1"}, format="json"), 400)


def test_support_cannot_post_events(as_user, support, people):
    assert_problem(as_user(support).post("/api/v1/events/", {"email": "p0@example.com", "name": "x"}, format="json"), 403)


@pytest.mark.parametrize(
    "event, field",
    [
        ({"name": "lesson_completed"}, "contact"),
        ({"email": "", "contact": None, "name": "lesson_completed"}, "contact"),
        ({"contact": 999_999, "name": "lesson_completed"}, "contact"),
        ({"email": "p0@example.com", "name": "lesson_completed", "properties": ["lesson", 3]}, "properties"),
        ({"email": "p0@example.com", "name": "lesson_completed", "properties": "lesson=3"}, "properties"),
        ({"email": "p0@example.com", "name": "lesson_completed", "properties": None}, "properties"),
        ({"email": "p0@example.com"}, "name"),
        ({"email": "p0@example.com", "name": ""}, "name"),
        ({"email": "p0@example.com", "name": "   "}, "name"),
        ({"email": "p0@example.com", "name": "x" * 101}, "name"),
        ({"email": "p0@example.com", "name": "bad name!"}, "name"),
        ({"email": "p0@example.com", "name": "<script>"}, "name"),
    ],
    ids=[
        "no-contact",
        "blank-contact",
        "unknown-contact-id",
        "properties-list",
        "properties-string",
        "properties-null",
        "no-name",
        "empty-name",
        "blank-name",
        "name-too-long",
        "name-with-space-and-bang",
        "name-with-markup",
    ],
)
def test_a_bad_event_is_a_400_naming_the_field_and_records_nothing(key_client, people, event, field):
    """Bad input over HTTP is a problem+json 400 whose `fields` name what is wrong, and no
    event (nor contact) is recorded. "Unknown event name" means an ill-formed one: a
    well-formed name that no automation or catalog knows is accepted and recorded (see
    the next test), because host apps send whatever events they have."""
    contacts_before = set(Contact.objects.values_list("pk", flat=True))
    body = assert_problem(key_client("Ops").post("/api/v1/events/", event, format="json"), 400)
    assert field in body["fields"], body
    assert not Event.objects.exists()
    assert set(Contact.objects.values_list("pk", flat=True)) == contacts_before


def test_a_well_formed_event_name_nobody_listens_to_is_recorded(key_client, people):
    response = key_client("Ops").post("/api/v1/events/", {"email": "p0@example.com", "name": "host_app.custom-thing:v2"}, format="json")
    assert response.status_code == 201
    assert Event.objects.get().name == "host_app.custom-thing:v2"
