"""Outbound webhooks against a real receiver: a ThreadingHTTPServer on loopback (allowed
through MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES here), signatures checked with the
Standard Webhooks reference implementation."""

import json
import re
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from config.console import webhooks_badge
from messaging.consent import subscribe, unsubscribe
from messaging.contacts import erase_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import record_hit
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, DeliveryEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging.schedules import may_run
from messaging.tasks import clean_delivery_logs
from messaging.tokens import Token
from messaging.webhooks.addresses import check_url
from messaging.webhooks.dispatch import backoff_seconds, send_due_webhooks
from messaging.webhooks.emit import emit, emit_many, subscribed_types
from messaging.webhooks.endpoints import change_endpoint, create_endpoint, replay_delivery
from messaging.webhooks.events import register_event_type
from messaging.webhooks.transport import webhook_session


class Receiver:
    """Answers each request with the next status in `statuses` (the last one repeats)."""

    def __init__(self, statuses: list[int]):
        self.statuses, self.requests = list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allow_loopback(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.MAILROOM_WEBHOOK_TIMEOUT_SECONDS = 3


@pytest.fixture
def receiver(allow_loopback):
    made = []

    def make(*statuses: int) -> Receiver:
        made.append(Receiver(list(statuses) or [200]))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _due_now():
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_event_is_signed_the_standard_webhooks_way(receiver, admin_user, contact, newsletter, django_capture_on_commit_callbacks):
    # given an endpoint subscribed to subscriptions
    hook = receiver(200)
    created = create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.subscribed"])
    assert created.secret.startswith("whsec_")
    # when a contact subscribes and the deliveries are sent
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(actor=None, contact=contact, topic=newsletter)
    assert send_due_webhooks() == 1
    # then the receiver got it, and the reference implementation verifies the signature
    ((headers, body),) = hook.requests
    payload = Webhook(created.secret).verify(body, headers)
    assert payload["type"] == "contact.subscribed"
    assert payload["data"] == {"contact_id": contact.pk, "topic": "newsletter", "channel": "email", "source": "console"} | {
        "source": payload["data"]["source"]
    }
    assert headers["webhook-id"].startswith("msg_")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.last_status_code == 200
    # and a tampered body does not verify
    with pytest.raises(WebhookVerificationError):
        Webhook(created.secret).verify(body + b" ", headers)


def test_no_endpoint_writes_nothing(db, contact, newsletter, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(actor=None, contact=contact, topic=newsletter)
    assert not WebhookDelivery.objects.exists()
    # the "anyone listening?" answer is cached: a second event costs no endpoint query
    with django_assert_max_num_queries(1):
        emit("contact.erased", {"contact_id": 1})


def test_500_then_200_is_delivered_twice_with_the_same_id(receiver, admin_user, django_capture_on_commit_callbacks):
    hook = receiver(500, 200)
    created = create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 7})
    send_due_webhooks()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.last_status_code == 500
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)  # 30 s backoff
    assert send_due_webhooks() == 0  # not due yet
    _due_now()
    send_due_webhooks()
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED and delivery.attempts == 2
    assert [h["webhook-id"] for h, _ in hook.requests] == [delivery.webhook_id] * 2
    assert all(Webhook(created.secret).verify(body, h) for h, body in hook.requests)
    assert list(WebhookAttempt.objects.order_by("id").values_list("status_code", flat=True)) == [500, 200]


def test_later_event_waits_for_an_earlier_one_to_be_delivered(receiver, admin_user, django_capture_on_commit_callbacks):
    hook = receiver(503, 200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 1})
        emit("contact.erased", {"contact_id": 2})
    send_due_webhooks()
    assert len(hook.requests) == 1  # the second one was not sent past the failed first
    _due_now()
    send_due_webhooks()
    ids = [json.loads(body)["data"]["contact_id"] for _, body in hook.requests]
    assert ids == [1, 1, 2]


def test_dead_receiver_disables_the_endpoint(allow_loopback, settings, admin_user, client, django_capture_on_commit_callbacks):
    settings.MAILROOM_WEBHOOK_DISABLE_AFTER = 3
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    create_endpoint(actor=admin_user, name="Dead", url=f"http://127.0.0.1:{port}/", event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 1})
    for _ in range(5):
        _due_now()
        send_due_webhooks()
    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.is_active and endpoint.disabled_at and endpoint.consecutive_failures == 3
    assert WebhookAttempt.objects.count() == 3
    assert "ConnectionError" in WebhookAttempt.objects.first().error
    # a disabled endpoint gets no new deliveries
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 2})
    assert WebhookDelivery.objects.count() == 1
    # the console says so
    client.force_login(admin_user)
    page = client.get("/admin/messaging/webhookendpoint/").content.decode()
    assert "The webhook endpoint “Dead” was turned off" in page and "3 failed attempts in a row" in page
    assert webhooks_badge(type("Request", (), {"user": admin_user})()) == 1  # the sidebar counts it on every page


def test_replay_sends_again_with_the_same_id(receiver, admin_user, django_capture_on_commit_callbacks):
    hook = receiver(200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 1})
    send_due_webhooks()
    replay_delivery(actor=admin_user, delivery=WebhookDelivery.objects.get())
    send_due_webhooks()
    assert len(hook.requests) == 2 and hook.requests[0][0]["webhook-id"] == hook.requests[1][0]["webhook-id"]
    assert AuditEntry.objects.filter(verb="requeued", target_type="messaging.webhookdelivery").exists()


def test_reenabling_clears_failures(allow_loopback, admin_user):
    endpoint = create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/", event_types=["contact.erased"]).endpoint
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, consecutive_failures=9, disabled_at=timezone.now())
    endpoint.refresh_from_db()
    change_endpoint(actor=admin_user, endpoint=endpoint, name="CRM", url=endpoint.url, event_types=endpoint.event_types, is_active=True)
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 0 and endpoint.disabled_at is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://localhost:8000/hook",
        "https://192.168.0.10/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_addresses_are_refused_at_save(db, admin_user, url):
    with pytest.raises(InvalidInput) as error:
        create_endpoint(actor=admin_user, name="Inside", url=url, event_types=["contact.erased"])
    assert "url" in error.value.fields
    assert not WebhookEndpoint.objects.exists() and not AuditEntry.objects.filter(target_type="messaging.webhookendpoint").exists()


def test_private_address_is_refused_again_at_delivery(receiver, settings, admin_user, django_capture_on_commit_callbacks):
    # saved while allowed (or before DNS changed), refused when sent
    hook = receiver(200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 1})
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    send_due_webhooks()
    assert hook.requests == []
    assert "private" in WebhookDelivery.objects.get().last_error


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"url": "ftp://example.com/x"}, "url", "Only http:// and https:// URLs"),
        ({"event_types": ["contact.teleported"]}, "event_types", "Unknown event type: contact.teleported"),
        ({"event_types": []}, "event_types", "Choose at least one event type"),
        ({"name": " "}, "name", "This field is required"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(db, admin_user, fields, field, text):
    values = {"name": "CRM", "url": "https://example.com/hook", "event_types": ["contact.erased"]} | fields
    with pytest.raises(InvalidInput) as error:
        create_endpoint(actor=admin_user, **values)
    assert text in " ".join(error.value.fields[field])
    assert not WebhookEndpoint.objects.exists() and not AuditEntry.objects.filter(target_type="messaging.webhookendpoint").exists()


def test_unknown_event_type_cannot_be_emitted(db):
    with pytest.raises(ValueError):
        emit("nothing.happened", {})


def test_higher_apps_register_event_types(receiver, admin_user, django_capture_on_commit_callbacks):
    register_event_type("test.thing_happened", "Thing happened")
    hook = receiver(200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["test.thing_happened"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("test.thing_happened", {"id": 3})
    send_due_webhooks()
    assert json.loads(hook.requests[0][1])["data"] == {"id": 3}


def test_unsubscribe_is_announced(receiver, admin_user, contact, newsletter, django_capture_on_commit_callbacks):
    hook = receiver(200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.unsubscribed"])
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(actor=None, contact=contact, topic=newsletter)
        unsubscribe(actor=None, contact=contact, topic=newsletter)
    send_due_webhooks()
    assert [json.loads(b)["type"] for _, b in hook.requests] == ["contact.unsubscribed"]


def test_backoff_doubles_and_is_capped(settings):
    settings.MAILROOM_WEBHOOK_BACKOFF_CAP_SECONDS = 200
    assert [backoff_seconds(n) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 200, 200]


def test_a_sent_message_announces_sent_and_delivered(receiver, settings, admin_user, django_capture_on_commit_callbacks):
    # the sandbox provider stores the message and records it delivered
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
    hook = receiver(200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["message.sent", "message.delivered"])
    message = enqueue_message(channel="email", to="ada@example.com", subject="Hello", text="Hi there")
    with django_capture_on_commit_callbacks(execute=True):
        send_due_messages()
    send_due_webhooks()
    events = sorted((json.loads(body)["type"], json.loads(body)["data"]["message_id"]) for _, body in hook.requests)
    assert events == [("message.delivered", message.pk), ("message.sent", message.pk)]
    assert all("ada@example.com" not in body.decode() for _, body in hook.requests)  # ids only


def test_erasing_a_contact_announces_it(allow_loopback, admin_user, contact, django_capture_on_commit_callbacks):
    create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/", event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        erase_contact(actor=admin_user, contact=contact)
    body = json.loads(WebhookDelivery.objects.get().body)
    assert body["type"] == "contact.erased" and body["data"] == {"contact_id": contact.pk}


def test_a_leased_endpoint_is_left_to_its_worker(receiver, admin_user, django_capture_on_commit_callbacks):
    hook = receiver(200)
    endpoint = create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.erased"]).endpoint
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 1})
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(lease_until=timezone.now() + timedelta(seconds=60), lease_owner="other")
    assert send_due_webhooks() == 0 and hook.requests == []
    # an expired lease (a dead worker) is taken over
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert send_due_webhooks() == 1 and len(hook.requests) == 1


def test_old_finished_deliveries_are_cleaned_pending_ones_stay(allow_loopback, admin_user, settings):
    endpoint = create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/", event_types=["contact.erased"]).endpoint
    for status in ("delivered", "failed", "pending"):
        WebhookDelivery.objects.create(endpoint=endpoint, event_type="contact.erased", webhook_id=f"msg_{status}", body="{}", status=status)
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=settings.MAILROOM_ATTEMPT_RETENTION_DAYS + 1))
    clean_delivery_logs()
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["pending"]


def test_the_connection_itself_refuses_a_private_peer(receiver, settings):
    # as if DNS answered a public address to the check and 127.0.0.1 to the connection
    hook = receiver(200)
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with webhook_session() as session, pytest.raises(requests.ConnectionError, match=r"private address 127\.0\.0\.1"):
        session.post(hook.url, data=b"{}", timeout=3)
    assert hook.requests == []


def test_a_batch_of_events_is_written_with_one_endpoint_query_and_one_insert(allow_loopback, admin_user, django_assert_num_queries):
    create_endpoint(actor=admin_user, name="A", url="http://127.0.0.1:9/", event_types=["message.sent"])
    create_endpoint(actor=admin_user, name="B", url="http://127.0.0.1:9/", event_types=["message.sent", "message.failed"])
    subscribed_types()
    with django_assert_num_queries(2):
        emit_many([("message.sent", {"message_id": n}) for n in range(50)] + [("message.failed", {"message_id": 99})])
    assert WebhookDelivery.objects.filter(event_type="message.sent").count() == 100
    assert WebhookDelivery.objects.filter(event_type="message.failed").count() == 1


def test_the_cluster_task_runs_through_django_q(receiver, admin_user, django_capture_on_commit_callbacks):
    hook = receiver(200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 1})
    assert may_run("messaging.tasks.send_webhooks")
    async_task("messaging.tasks.send_webhooks", sync=True)
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.DELIVERED


def test_a_spent_time_budget_starts_no_attempt(receiver, admin_user, django_capture_on_commit_callbacks):
    hook = receiver(200)
    create_endpoint(actor=admin_user, name="CRM", url=hook.url, event_types=["contact.erased"])
    with django_capture_on_commit_callbacks(execute=True):
        emit("contact.erased", {"contact_id": 1})
    assert send_due_webhooks(time_budget=1e-9) == 0 and hook.requests == []


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("http://", "needs a host name"),
        ("javascript:alert(1)", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("https://user:pw@example.com/", "no user name or password"),
        ("http://" + "x" * 70 + ".test/", "cannot be resolved"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_odd_urls_are_refused_with_a_reason(db, url, text):
    with pytest.raises(InvalidInput, match=re.escape(text)):
        check_url(url)


# --- a transactional outbox: the event commits with the change it announces, or neither --------
def test_the_delivery_row_is_written_in_the_changing_transaction(allow_loopback, admin_user, contact, newsletter):
    create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/", event_types=["contact.subscribed"])
    with transaction.atomic():
        subscribe(actor=None, contact=contact, topic=newsletter)
        # before the commit: a process dying after it cannot lose the event
        assert WebhookDelivery.objects.filter(event_type="contact.subscribed").count() == 1


def test_a_rolled_back_change_announces_nothing(allow_loopback, admin_user, contact, newsletter):
    create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/", event_types=["contact.subscribed"])

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        subscribe(actor=None, contact=contact, topic=newsletter)
        raise Abandoned
    assert not WebhookDelivery.objects.exists() and not contact.subscriptions.exists()


def test_an_open_and_its_webhook_land_together(allow_loopback, admin_user, settings):
    settings.MAILROOM_KICK_CLUSTER = False
    create_endpoint(actor=admin_user, name="CRM", url="http://127.0.0.1:9/", event_types=["message.opened", "message.clicked"])
    message = enqueue_message(channel="email", to="ada@example.com", subject="Hello", text="Hi there")
    token = Token(data={}, issued_at=timezone.now() - timedelta(hours=1))
    assert record_hit(kind="opened", message_pk=message.pk, token=token, user_agent="Mozilla/5.0 (X11) Firefox/140.0")
    (delivery,) = WebhookDelivery.objects.all()
    assert json.loads(delivery.body)["data"]["message_id"] == message.pk
    assert DeliveryEvent.objects.filter(kind="opened").count() == 1
