"""Outbox messages: enqueue (idempotent by dedup key), status, cancel."""

import pytest

from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.models import AuditEntry, OutboxMessage
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/messages/"


def test_ops_key_enqueues_a_message_for_a_contact(key_client, contact, receipts):
    response = key_client("Ops").post(
        URL,
        {
            "contact": contact.pk,
            "topic": "receipts",
            "subject": "Order {{ order }}",
            "text": "Thanks {{ contact.first_name }}",
            "context": {"order": "A-1"},
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["to"] == "ada@example.com" and body["subject"] == "Order A-1"
    assert response["Location"] == f"{URL}{body['id']}/"
    assert OutboxMessage.objects.get(pk=body["id"]).body_text == "Thanks Ada"


def test_repeated_dedup_key_returns_the_first_message_with_200(as_user, ops):
    client = as_user(ops)
    payload = {"to": "bob@example.com", "subject": "Reset", "text": "Your code", "dedup_key": "reset:bob:1"}
    first = client.post(URL, payload)
    again = client.post(URL, {**payload, "text": "Something else"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert OutboxMessage.objects.count() == 1


def test_enqueue_with_an_active_template(as_user, ops, contact):
    template = create_template(actor=None, key="welcome", name="Welcome")
    version = save_template_version(
        actor=None, template=template, body_format="html", subject="Hi {{ contact.first_name }}", body="<p>Hello</p>"
    )
    activate_template_version(actor=None, version=version)
    response = as_user(ops).post(URL, {"contact": contact.pk, "template": "welcome"})
    assert response.status_code == 201, response.json()
    assert response.json()["subject"] == "Hi Ada"


def test_enqueue_validation_errors_name_the_fields(as_user, ops):
    client = as_user(ops)
    body = assert_problem(client.post(URL, {"channel": "pigeon", "template": "nope"}), 400, "invalid")
    assert set(body["fields"]) == {"channel", "template"}
    body = assert_problem(client.post(URL, {"to": "not-an-address", "text": "x"}), 400, "invalid")
    assert "address" in body["fields"]
    body = assert_problem(client.post(URL, {"text": "x"}), 400, "invalid")
    assert body["fields"] == {"to": ["This field is required."]}
    body = assert_problem(client.post(URL, {"to": "a@example.com", "text": "Hi {{ name }}"}), 400, "missing_variable")
    assert "name" in body["detail"]
    assert not OutboxMessage.objects.exists()


def test_malformed_json_is_a_400_problem(as_user, ops):
    response = as_user(ops).post(URL, "{not json", content_type="application/json")
    assert_problem(response, 400, "parse_error")


def test_marketer_cannot_enqueue_but_reads_status(as_user, marketer):
    message = enqueue_message(channel="email", to="a@example.com", text="x")
    client = as_user(marketer)
    assert_problem(client.post(URL, {"to": "a@example.com", "text": "x"}), 403)
    assert client.get(f"{URL}{message.pk}/").json()["status"] == "queued"


def test_approver_cannot_see_the_outbox(as_user, approver):
    assert_problem(as_user(approver).get(URL), 403)


def test_unauthenticated_enqueue_is_a_401(api):
    assert_problem(api.post(URL, {"to": "a@example.com", "text": "x"}), 401)


def test_status_list_filters(as_user, ops):
    enqueue_message(channel="email", to="a@example.com", text="x", dedup_key="k1")
    sms = enqueue_message(channel="sms", to="+33612345678", text="x")
    client = as_user(ops)
    assert client.get(URL, {"channel": "sms"}).json()["results"][0]["id"] == sms.pk
    assert client.get(URL, {"dedup_key": "k1"}).json()["count"] == 1
    assert client.get(URL, {"status": "sent"}).json()["count"] == 0


def test_missing_message_is_a_404(as_user, ops):
    assert_problem(as_user(ops).get(f"{URL}987654/"), 404)
    assert_problem(as_user(ops).post(f"{URL}987654/cancel/"), 404)


def test_cancel_a_queued_message(as_user, support):
    message = enqueue_message(channel="email", to="a@example.com", text="x")
    response = as_user(support).post(f"{URL}{message.pk}/cancel/", {"reason": "customer asked"})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["error"] == "customer asked"
    assert AuditEntry.objects.filter(verb="cancelled", target_id=str(message.pk), actor=support).exists()


def test_cancelling_a_sent_message_is_a_409_conflict(as_user, ops):
    message = enqueue_message(channel="email", to="a@example.com", text="x")
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.SENT)
    body = assert_problem(as_user(ops).post(f"{URL}{message.pk}/cancel/"), 409, "not_allowed")
    assert "Only a queued message can be cancelled" in body["detail"]
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT


def test_marketer_cannot_cancel(as_user, marketer):
    message = enqueue_message(channel="email", to="a@example.com", text="x")
    assert_problem(as_user(marketer).post(f"{URL}{message.pk}/cancel/"), 403)


# --- bulk ---------------------------------------------------------------------------------------
def test_a_bulk_send_queues_each_recipient_once_and_says_who_was_skipped(as_user, ops, contact, receipts):
    client = as_user(ops)
    payload = {
        "key": "maintenance-2026-12",
        "topic": "receipts",
        "subject": "Maintenance tonight",
        "text": "Hello, we are down from {{ start }} to {{ end }}.",
        "context": {"start": "02:00", "end": "03:00"},
        "contacts": [contact.pk],
        "recipients": ["bob@example.com", "ADA@example.com", "not-an-address"],
    }
    # when a bulk send names Ada twice (as a contact and by her address) and one bad address
    first = client.post(f"{URL}bulk/", payload, format="json")
    # then Ada and Bob get one message each, the bad address is skipped with the reason
    assert first.status_code == 202, first.json()
    body = first.json()
    assert (body["queued"], body["deduplicated"]) == (2, 1) and list(body["skipped"]) == ["not-an-address"], body
    ada = OutboxMessage.objects.get(to_address="ada@example.com")
    assert (
        ada.contact == contact
        and ada.body_text == "Hello, we are down from 02:00 to 03:00."
        and ada.priority == OutboxMessage.Priority.BULK
    )
    # and the same key again queues nothing
    again = client.post(f"{URL}bulk/", payload, format="json").json()
    assert (again["queued"], again["deduplicated"]) == (0, 3) and OutboxMessage.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"recipients": ["a@example.com"], "text": "x"}, "key"),
        ({"key": "k", "text": "x"}, "recipients"),
        ({"key": "k", "text": "x", "recipients": [f"p{n}@example.com" for n in range(1001)]}, "recipients"),
        ({"key": "k", "text": "x", "contacts": [999999]}, "contacts"),
    ],
)
def test_a_bad_bulk_send_is_a_400_and_queues_nothing(as_user, ops, payload, field):
    body = assert_problem(as_user(ops).post(f"{URL}bulk/", payload, format="json"), 400)
    assert field in body["fields"] and not OutboxMessage.objects.exists()


def test_only_who_may_enqueue_may_bulk_send(as_user, approver, api):
    payload = {"key": "k", "text": "x", "recipients": ["a@example.com"]}
    assert_problem(as_user(approver).post(f"{URL}bulk/", payload, format="json"), 403)
    assert_problem(api.post(f"{URL}bulk/", payload, format="json"), 401)
    assert not OutboxMessage.objects.exists()
