"""Issue 16, review across the seams: dotted paths that roles other than Admin could still
point at any function on the server, after the schedules were closed (item 2).

- `Inbox.handler` is imported and called for each inbound message; Ops has every right on
  inboxes, and an inbound message is one signed webhook away.
- An `anymail` provider names "any Django email backend" in its config; Ops has every right
  on providers: Django's file backend writes wherever it is told (as the server's user).
"""

import json

import pytest

from messaging.inbound import receive_inbound, run_handler
from messaging.models import Inbox, InboxMessage, OutboxMessage, Provider
from messaging.outbox import enqueue_message
from messaging.sending import send_due_messages

pytestmark = pytest.mark.django_db

INBOXES = "/admin/messaging/inbox/"
PROVIDERS = "/admin/messaging/provider/"
CALLS: list = []


def pwned(inbound) -> str:
    """Stands for subprocess.getoutput & co: a function nobody registered as a handler."""
    CALLS.append(inbound.pk)
    return "ran"


@pytest.fixture(autouse=True)
def _clean(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    CALLS.clear()


def inbox_form(**overrides) -> dict:
    return {
        "name": "Replies",
        "channel": "sms",
        "address": "+33700000009",
        "handler": "messaging.inbound.handle_stop_words",
        "is_active": "on",
        **overrides,
    }


# --- Inbox.handler ----------------------------------------------------------------------------
@pytest.mark.parametrize("handler", ["subprocess.getoutput", "os.system", "tests.security.test_review1_seams.pwned"])
def test_ops_cannot_point_an_inbox_handler_at_an_arbitrary_function(client, ops, handler):
    client.force_login(ops)
    response = client.post(f"{INBOXES}add/", inbox_form(handler=handler))
    assert response.status_code == 200  # the form again, with an error on the handler
    assert "handler" in response.context["adminform"].form.errors
    assert not Inbox.objects.exists()
    inbox = Inbox.objects.create(name="Replies", channel="sms", address="+33700000009")
    response = client.post(f"{INBOXES}{inbox.pk}/change/", inbox_form(handler=handler))
    assert response.status_code == 200 and "handler" in response.context["adminform"].form.errors
    inbox.refresh_from_db()
    assert inbox.handler == "messaging.inbound.handle_stop_words"


def test_ops_can_still_pick_a_registered_inbox_handler(client, ops):
    client.force_login(ops)
    response = client.post(f"{INBOXES}add/", inbox_form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Inbox.objects.get().handler == "messaging.inbound.handle_stop_words"


def test_an_inbound_message_never_runs_an_unregistered_handler_that_got_into_the_row():
    Inbox.objects.create(name="Replies", channel="sms", address="+33700000009", handler="tests.security.test_review1_seams.pwned")
    inbound = receive_inbound(channel="sms", from_address="+33612345678", to_address="+33700000009", body="hello", external_id="in-1")
    assert CALLS == []
    assert inbound.status == InboxMessage.Status.FAILED and "not one of Mailroom's inbound handlers" in inbound.result
    run_handler(inbound)  # the re-run path (process_notifications --inbox-only) too
    assert CALLS == []


# --- anymail provider backend -------------------------------------------------------------------
def provider_form(**config) -> dict:
    return {
        "name": "ESP",
        "channel": "email",
        "kind": "anymail",
        "priority": "10",
        "is_active": "on",
        "config": json.dumps(config),
        "rate_per_second": "",
        "rate_per_hour": "",
    }


FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


@pytest.mark.parametrize(
    "backend", [FILE_BACKEND, "anymail.backends.console.EmailBackend", "subprocess.Popen", "anymail.backends.base.AnymailBaseBackend"]
)
def test_ops_cannot_give_an_esp_provider_an_arbitrary_backend_path(client, ops, backend, tmp_path):
    client.force_login(ops)
    response = client.post(f"{PROVIDERS}add/", provider_form(backend=backend, options={"file_path": str(tmp_path)}))
    assert response.status_code == 200
    assert "config" in response.context["adminform"].form.errors
    assert not Provider.objects.exists()


def test_a_provider_row_with_the_file_backend_writes_no_file_and_fails_visibly(tmp_path):
    Provider.objects.create(
        name="ESP", channel="email", kind="anymail", config={"backend": FILE_BACKEND, "options": {"file_path": str(tmp_path / "drop")}}
    )
    message = enqueue_message(channel="email", to="ada@example.com", subject="Hi", text="Hello")
    send_due_messages()
    message.refresh_from_db()
    assert not (tmp_path / "drop").exists()
    assert message.status == OutboxMessage.Status.FAILED and "not an email service backend" in message.error


def test_ops_can_still_configure_an_anymail_esp(client, ops):
    client.force_login(ops)
    response = client.post(f"{PROVIDERS}add/", provider_form(backend="anymail.backends.mailgun.EmailBackend", options={}))
    assert response.status_code == 302, response.context["adminform"].form.errors
