"""A contact's consent per topic and channel, and unsubscribes, through the consent actions."""

import pytest

from messaging.consent import subscribe
from messaging.delivery.outbox import enqueue_message
from messaging.models import ConsentRecord, OutboxMessage, Subscription, Suppression
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


def url(contact, what="subscriptions"):
    return f"/api/v1/contacts/{contact.pk}/{what}/"


def test_support_reads_and_changes_preferences_with_consent_records(as_user, support, contact, newsletter, receipts):
    client = as_user(support)
    assert client.get(url(contact)).json() == []
    response = client.patch(
        url(contact),
        {
            "subscriptions": [
                {"topic": "newsletter", "channel": "email", "status": "subscribed"},
                {"topic": "receipts", "channel": "sms", "status": "unsubscribed"},
            ],
            "wording_version": "signup-v2",
        },
    )
    assert response.status_code == 200, response.json()
    states = {(s["topic"], s["channel"]): s["status"] for s in response.json()}
    assert states == {("newsletter", "email"): "subscribed", ("receipts", "sms"): "unsubscribed"}
    record = ConsentRecord.objects.get(topic=newsletter, action=ConsentRecord.Action.GRANTED)
    assert record.source == ConsentRecord.Source.API
    assert record.actor == support and record.wording_version == "signup-v2"
    assert record.ip_address == "127.0.0.1"


def test_unknown_topic_and_status_are_field_errors(as_user, support, contact, newsletter):
    response = as_user(support).patch(url(contact), {"subscriptions": [{"topic": "nope", "status": "maybe"}]})
    body = assert_problem(response, 400, "invalid")
    assert set(body["fields"]) == {"subscriptions.0.topic", "subscriptions.0.status"}
    assert not Subscription.objects.exists()


def test_empty_change_list_is_refused(as_user, support, contact):
    body = assert_problem(as_user(support).patch(url(contact), {"subscriptions": []}), 400)
    assert "subscriptions" in body["fields"]


def test_approver_reads_but_cannot_change_preferences(as_user, approver, contact, newsletter):
    client = as_user(approver)
    assert client.get(url(contact)).status_code == 200
    response = client.patch(url(contact), {"subscriptions": [{"topic": "newsletter", "status": "subscribed"}]})
    assert_problem(response, 403)
    assert_problem(client.post(url(contact, "unsubscribe"), {}), 403)


def test_unauthenticated_preferences_are_a_401(api, contact):
    assert_problem(api.get(url(contact)), 401)


def test_preferences_of_a_missing_contact_are_a_404(as_user, support):
    assert_problem(as_user(support).get("/api/v1/contacts/424242/subscriptions/"), 404)


def test_unsubscribe_contact_withdraws_consent_and_cancels_queued_marketing(settings, as_user, support, contact, newsletter):
    settings.MAILROOM_SENDER_ADDRESS = "1 rue de la Paix, Paris"
    subscribe(actor=None, contact=contact, topic=newsletter)
    queued = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="News", text="Hello")
    response = as_user(support).post(url(contact, "unsubscribe"), {"topic": "newsletter"})
    assert response.status_code == 200
    assert response.json()[0]["status"] == "unsubscribed"
    queued.refresh_from_db()
    assert queued.status == OutboxMessage.Status.CANCELLED
    assert ConsentRecord.objects.filter(action=ConsentRecord.Action.WITHDRAWN, source="api", actor=support).count() == 1


def test_unsubscribe_by_address_finds_the_contact(as_user, support, contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    response = as_user(support).post("/api/v1/unsubscribe/", {"address": " ADA@example.com ", "channel": "email"})
    assert response.status_code == 200
    body = response.json()
    assert body["contact"] == contact.pk and body["suppressed"] is False
    assert Subscription.objects.get(contact=contact, topic=newsletter).status == "unsubscribed"


def test_unsubscribe_of_an_unknown_address_suppresses_it(as_user, support, newsletter):
    response = as_user(support).post("/api/v1/unsubscribe/", {"address": "stranger@example.com", "channel": "email"})
    assert response.status_code == 200
    assert response.json() == {"contact": None, "suppressed": True, "subscriptions": []}
    assert Suppression.objects.get(address="stranger@example.com").reason == Suppression.Reason.UNSUBSCRIBE


def test_unsubscribe_with_a_bad_address_names_the_field(as_user, support):
    body = assert_problem(as_user(support).post("/api/v1/unsubscribe/", {"address": "nope", "channel": "email"}), 400)
    assert "address" in body["fields"]
