import pytest

from messaging.consent import suppress_address
from messaging.models import AuditEntry, Suppression
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/suppressions/"


def test_ops_suppresses_lists_and_lifts(as_user, ops):
    client = as_user(ops)
    response = client.post(URL, {"address": " Bounce@Example.com", "channel": "email", "reason": "hard_bounce"})
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["address"] == "bounce@example.com"
    # suppressing again keeps the first
    again = client.post(URL, {"address": "bounce@example.com", "channel": "email", "reason": "manual"})
    assert again.json()["id"] == created["id"] and again.json()["reason"] == "hard_bounce"
    assert client.get(URL, {"reason": "hard_bounce"}).json()["count"] == 1
    assert client.get(URL, {"address": "BOUNCE@example.com"}).json()["count"] == 1
    assert client.delete(f"{URL}{created['id']}/").status_code == 204
    assert not Suppression.objects.exists()
    assert list(AuditEntry.objects.filter(target_type="messaging.suppression").values_list("verb", flat=True).order_by("id")) == [
        "suppressed",
        "unsuppressed",
    ]


def test_suppression_validation_names_the_fields(as_user, ops):
    client = as_user(ops)
    body = assert_problem(client.post(URL, {"channel": "fax", "reason": "whim"}), 400, "invalid")
    assert set(body["fields"]) == {"address", "channel", "reason"}
    body = assert_problem(client.post(URL, {"address": "12", "channel": "sms"}), 400, "invalid")
    assert "address" in body["fields"]


def test_support_adds_but_cannot_lift(as_user, support):
    suppression = suppress_address(actor=None, address="x@example.com", channel="email", reason="manual")
    client = as_user(support)
    assert client.post(URL, {"address": "y@example.com", "channel": "email"}).status_code == 201
    assert_problem(client.delete(f"{URL}{suppression.pk}/"), 403)


def test_marketer_reads_but_cannot_suppress(as_user, marketer):
    client = as_user(marketer)
    assert client.get(URL).status_code == 200
    assert_problem(client.post(URL, {"address": "y@example.com", "channel": "email"}), 403)


def test_unauthenticated_and_missing(api, as_user, ops):
    assert_problem(api.get(URL), 401)
    assert_problem(as_user(ops).delete(f"{URL}4242/"), 404)


def test_suppressions_cannot_be_edited(as_user, ops):
    suppression = suppress_address(actor=None, address="x@example.com", channel="email", reason="manual")
    assert_problem(as_user(ops).patch(f"{URL}{suppression.pk}/", {"note": "x"}), 405, "method_not_allowed")
