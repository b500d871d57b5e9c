"""Sensitive messages (messaging.secrets): what any feature gets by passing `secrets=` to
enqueue_message. The attacks themselves are in tests/security/test_secrets_in_messages.py."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging.delivery.outbox import cancel_message, enqueue_message, requeue_failed, retry_message
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import OutboxMessage, Provider, SandboxMessage
from messaging.secrets import attach_secrets, marker, reveal
from tests.messaging.test_delivery import FakeTwilio, http_api, sms_provider  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
SECRET = "https://mailroom.test/e/reset/s3cr3t-t0ken-value/"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


def sensitive(**kwargs) -> OutboxMessage:
    defaults = {"channel": "email", "to": "ada@example.com", "subject": "Your link", "text": "Open {{ url }}", "secrets": {"url": SECRET}}
    return enqueue_message(**(defaults | kwargs))


def test_a_secret_is_stored_as_a_marker_and_sealed():
    message = sensitive(html='<p><a href="{{ url }}">Reset</a></p>')
    message.refresh_from_db()
    assert message.is_sensitive and message.sealed_secrets
    assert SECRET not in message.body_text + message.body_html + message.sealed_secrets
    assert marker("url") in message.body_text and "/t/" not in message.body_html  # never a TrackedLink
    attach_secrets(message)
    assert reveal(message, message.body_text) == f"Open {SECRET}"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"secrets": {"Bad Name": SECRET}}, "needs a name"),
        ({"secrets": {"url__x": SECRET}}, "needs a name"),
        ({"secrets": {"url": "ab"}}, "at least 4 characters"),
        ({"text": f"Open {SECRET}"}, "appears in clear"),
        ({"text": "No link here"}, "is not used"),
        ({"subject": "Link {{ url }}"}, "cannot go in the subject"),
        ({"metadata": {"copy": SECRET}}, "appears in clear"),
    ],
)
def test_a_badly_marked_secret_is_refused_and_nothing_is_queued(kwargs, error):
    with pytest.raises(InvalidInput, match=error):
        sensitive(**kwargs)
    assert not OutboxMessage.objects.exists()


def test_a_message_whose_key_changed_fails_with_the_reason_instead_of_sending_a_marker(settings):
    message = sensitive()
    settings.SECRET_KEY = "another-key-entirely-" + "x" * 40
    send_due_messages()
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.FAILED and "cannot be unsealed" in message.error
    assert message.sealed_secrets == "" and not SandboxMessage.objects.exists()


def test_a_rotated_secret_key_still_opens_the_queued_seals(settings):
    old_key = settings.SECRET_KEY
    message = sensitive()
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-new-key-" + "y" * 40, [old_key]
    send_due_messages()
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT
    caught = SandboxMessage.objects.get()
    assert caught.is_sensitive and SECRET not in caught.body_text and "hidden: contains a secret link" in caught.body_text


def test_cancelling_drops_the_seal_and_a_spent_message_cannot_be_requeued(admin_user):
    message = cancel_message(actor=admin_user, message=sensitive())
    message.refresh_from_db()
    assert message.sealed_secrets == ""
    with pytest.raises(NotAllowed, match="ask for a new one"):
        retry_message(actor=admin_user, message=message)
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.FAILED)
    assert requeue_failed(actor=admin_user) == 0
    assert OutboxMessage.objects.get(pk=message.pk).status == OutboxMessage.Status.FAILED


def test_a_batch_without_sensitive_messages_costs_no_extra_query():
    for n in range(5):
        enqueue_message(channel="email", to=f"p{n}@example.com", subject="Hi", text="Plain")
    send_due_messages()  # warm up: the sandbox provider row is created once
    for n in range(5):
        enqueue_message(channel="email", to=f"q{n}@example.com", subject="Hi", text="Plain")
    with CaptureQueriesContext(connection) as plain:
        send_due_messages()
    for n in range(5):
        enqueue_message(channel="email", to=f"r{n}@example.com", subject="Hi", text="Open {{ url }}", secrets={"url": f"{SECRET}{n}"})
    with CaptureQueriesContext(connection) as secret:
        send_due_messages()
    assert not any('sealed_secrets" = ' in q["sql"] or "sealed_secrets = " in q["sql"] for q in plain.captured_queries)
    assert len(secret.captured_queries) == len(plain.captured_queries) + 1  # the seals dropped, in one statement


def test_an_esp_gets_the_secret_and_the_row_keeps_none():
    from django.core import mail

    Provider.objects.create(name="ESP", channel="email", kind="anymail", config={"backend": "anymail.backends.test.EmailBackend"})
    message = sensitive(html='<p><a href="{{ url }}">Reset</a></p>')
    send_due_messages()
    sent = mail.outbox[0]
    assert sent.body == f"Open {SECRET}" and SECRET in sent.alternatives[0][0]
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT and message.sealed_secrets == ""


@pytest.mark.usefixtures("sms_provider")
def test_an_sms_code_goes_to_the_http_api_and_the_row_keeps_none():
    message = enqueue_message(channel="sms", to="06 12 34 56 78", text="Your code is {{ code }}", secrets={"code": "918273"})
    assert "918273" not in message.body_text
    send_due_messages()
    assert FakeTwilio.received[0]["form"]["Body"] == "Your code is 918273"
    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.SENT and message.sealed_secrets == ""
