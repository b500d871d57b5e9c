import json

import pytest

from messaging.models import AuditEntry, WebhookDelivery, WebhookEndpoint
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhooks/endpoints/"
DELIVERIES = "/api/v1/webhooks/deliveries/"


@pytest.fixture(autouse=True)
def _loopback(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


def _body(**values) -> str:
    return json.dumps({"name": "CRM", "url": "http://127.0.0.1:9/hook", "event_types": ["message.sent"]} | values)


def test_ops_creates_reads_changes_and_deletes_an_endpoint(as_user, ops):
    client = as_user(ops)
    response = client.post(URL, _body(), content_type="application/json")
    assert response.status_code == 201, response.json()
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and "no-store" in response["Cache-Control"]
    # the secret is never returned again, nor audited
    listed = client.get(URL).content.decode() + client.get(f"{URL}{created['id']}/").content.decode()
    assert secret not in listed and "secret" not in listed
    assert not any(secret in str(e.changes) for e in AuditEntry.objects.all())
    changed = client.patch(f"{URL}{created['id']}/", {"event_types": ["message.sent", "contact.erased"]}, format="json")
    assert changed.status_code == 200 and changed.json()["event_types"] == ["contact.erased", "message.sent"]
    assert secret not in changed.content.decode()
    assert client.delete(f"{URL}{created['id']}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("values", "field", "text"),
    [
        ({"url": "ftp://example.com/x"}, "url", "Only http:// and https:// URLs"),
        ({"event_types": ["message.teleported"]}, "event_types", "Unknown event type: message.teleported"),
    ],
)
def test_bad_input_is_a_clear_400_and_writes_nothing(as_user, ops, values, field, text):
    body = assert_problem(as_user(ops).post(URL, _body(**values), content_type="application/json"), 400, "invalid")
    assert text in " ".join(body["fields"][field])
    assert not WebhookEndpoint.objects.exists()


def test_private_address_refused_through_the_api(as_user, ops, settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    body = assert_problem(as_user(ops).post(URL, _body(url="http://10.0.0.5/"), content_type="application/json"), 400, "invalid")
    assert "private" in " ".join(body["fields"]["url"])


@pytest.mark.parametrize("role", ["marketer", "support"])
def test_marketer_and_support_cannot_touch_webhooks(request, as_user, role):
    client = as_user(request.getfixturevalue(role))
    assert client.get(URL).status_code == 403
    assert client.post(URL, _body(), content_type="application/json").status_code == 403
    assert client.get(DELIVERIES).status_code == 403


def test_deliveries_are_listed_and_replayed(as_user, ops):
    client = as_user(ops)
    endpoint_id = client.post(URL, _body(), content_type="application/json").json()["id"]
    delivery = WebhookDelivery.objects.create(
        endpoint_id=endpoint_id, event_type="message.sent", webhook_id="msg_x", body="{}", status="failed"
    )
    assert client.get(DELIVERIES, {"endpoint": endpoint_id}).json()["count"] == 1
    replayed = client.post(f"{DELIVERIES}{delivery.pk}/replay/")
    assert replayed.status_code == 200 and replayed.json()["status"] == "pending" and replayed.json()["webhook_id"] == "msg_x"
