"""An event type registered as secret (its data holds something only the receiver may
read, e.g. a coupon code) is delivered in clear on the wire, the same bytes under the same
id on every retry and replay, but stored sealed and never shown in the console or the API."""

import pytest
from django.urls import reverse
from standardwebhooks import Webhook

from messaging.models import WebhookDelivery
from messaging.webhooks.dispatch import send_due_webhooks
from messaging.webhooks.emit import emit, shown_body, wire_body
from messaging.webhooks.endpoints import create_endpoint, replay_delivery
from messaging.webhooks.events import SECRET_EVENT_TYPES, register_event_type
from tests.support.local_http import LocalServer

SECRET = "TOP-SECRET-VALUE-42"


@pytest.fixture(autouse=True)
def _types(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.MAILROOM_WEBHOOK_TIMEOUT_SECONDS = 3
    register_event_type("test.secret_issued", "Secret issued", secret=True)
    register_event_type("test.plain_event", "Plain event")
    yield
    SECRET_EVENT_TYPES.discard("test.secret_issued")


@pytest.fixture
def receiver():
    statuses = [500, 200]

    def answer(request):
        return (statuses.pop(0) if len(statuses) > 1 else statuses[0]), {}

    with LocalServer(answer) as server:
        yield server


def test_a_secret_event_is_sealed_at_rest_and_clear_on_the_wire(db, receiver, admin_user, client, django_capture_on_commit_callbacks):
    created = create_endpoint(actor=admin_user, name="Shop", url=receiver.url, event_types=["test.secret_issued", "test.plain_event"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("test.secret_issued", {"code": SECRET})
        emit("test.plain_event", {"id": 7})
    sealed, plain = WebhookDelivery.objects.order_by("id")
    # at rest: the secret event's body is sealed, the plain one is not
    assert (sealed.is_sealed, plain.is_sealed) == (True, False)
    assert SECRET not in sealed.body and '"id": 7' in plain.body
    assert SECRET in wire_body(sealed) and shown_body(sealed) == "[hidden: contains a secret]"
    # on the wire: a 500, then a retry with the same id and bytes, verified the standard way
    assert send_due_webhooks() == 1
    WebhookDelivery.objects.filter(pk=sealed.pk).update(next_attempt_at=None)
    send_due_webhooks()
    first, retry = receiver.requests[:2]
    assert (first.headers["webhook-id"], first.body) == (retry.headers["webhook-id"], retry.body)
    payload = Webhook(created.secret).verify(retry.body, {k.lower(): v for k, v in retry.headers.items()})
    assert payload["data"] == {"code": SECRET}
    # a replay sends the very same bytes again
    replay_delivery(actor=admin_user, delivery=sealed)
    send_due_webhooks()
    replayed = [r for r in receiver.requests if r.headers["webhook-id"] == sealed.webhook_id][-1]
    assert replayed.body == first.body
    # nobody reads it back: console delivery log (list and page), API list and detail
    client.force_login(admin_user)
    for url in (
        reverse("admin:messaging_webhookdelivery_changelist"),
        reverse("admin:messaging_webhookdelivery_change", args=[sealed.pk]),
        "/api/v1/webhooks/deliveries/",
        f"/api/v1/webhooks/deliveries/{sealed.pk}/",
    ):
        response = client.get(url)
        assert response.status_code == 200 and SECRET not in response.content.decode(), url
    assert "hidden: contains a secret" in client.get(reverse("admin:messaging_webhookdelivery_change", args=[sealed.pk])).content.decode()
    assert '"id": 7' in client.get(reverse("admin:messaging_webhookdelivery_change", args=[plain.pk])).content.decode().replace(
        "&quot;", '"'
    )


def test_a_body_that_no_longer_opens_fails_the_attempt_without_sending(
    db, receiver, admin_user, settings, django_capture_on_commit_callbacks
):
    create_endpoint(actor=admin_user, name="Shop", url=receiver.url, event_types=["test.secret_issued"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("test.secret_issued", {"code": SECRET})
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(body=delivery.body[:-4] + "AAAA")  # tampered at rest
    send_due_webhooks()
    delivery.refresh_from_db()
    assert "cannot be unsealed" in delivery.last_error and delivery.status == WebhookDelivery.Status.PENDING
    assert not receiver.requests
