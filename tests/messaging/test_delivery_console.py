"""The Delivery area of the console, through HTTP as named roles."""

import re

import pytest

from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import AuditEntry, OutboxMessage, Provider, SandboxMessage

pytestmark = pytest.mark.django_db

OUTBOX = "/admin/messaging/outboxmessage/"


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.MAILROOM_KICK_CLUSTER = False


def failed_message() -> OutboxMessage:
    message = enqueue_message(
        channel="email", to="ada@example.com", subject="Hi", text="Hello", html="<p>Hello <script>alert(1)</script></p>"
    )
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed", error="550 no such user")
    return message


def test_ops_sees_the_outbox_with_filters_and_the_live_queue_panel(client, ops):
    failed_message()
    client.force_login(ops)
    page = client.get(OUTBOX + "?status=failed").content.decode()
    assert "ada@example.com" in page and 'data-testid="queue-panel"' in page
    panel = client.get(OUTBOX + "queue-panel/", headers={"HX-Request": "true"})
    assert panel.status_code == 200
    assert 'data-status="failed"' in panel.content.decode() and "<html" not in panel.content.decode()


def test_message_detail_shows_content_only_inside_a_sandboxed_iframe(client, ops):
    message = failed_message()
    client.force_login(ops)
    page = client.get(f"{OUTBOX}{message.pk}/change/").content.decode()
    frame = re.search(r"<iframe[^>]*>", page).group(0)
    # the frame runs nothing and has no origin: its sandbox only lets links open in a new tab
    assert sorted(re.search(r'sandbox="([^"]*)"', frame).group(1).split()) == ["allow-popups", "allow-popups-to-escape-sandbox"]
    assert "srcdoc=" in frame
    assert "<script>alert(1)</script>" not in page  # escaped into srcdoc, never live in the console


def test_ops_requeues_a_failed_message_and_it_is_audited(client, ops):
    message = failed_message()
    client.force_login(ops)
    response = client.post(OUTBOX, {"action": "requeue_messages", "_selected_action": [message.pk]}, follow=True)
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "queued" and message.attempts == 0
    assert AuditEntry.objects.filter(verb="requeued", actor=ops).exists()


def test_a_marketer_can_read_the_outbox_but_not_requeue(client, marketer):
    message = failed_message()
    client.force_login(marketer)
    assert client.get(OUTBOX).status_code == 200
    client.post(OUTBOX, {"action": "requeue_messages", "_selected_action": [message.pk]})
    message.refresh_from_db()
    assert message.status == "failed"


def test_cancelling_a_sent_message_is_refused_with_a_message(client, ops):
    message = enqueue_message(channel="email", to="bob@example.com", text="Hi")
    send_due_messages()
    client.force_login(ops)
    response = client.post(OUTBOX, {"action": "cancel_messages", "_selected_action": [message.pk]}, follow=True)
    assert "Only a queued message can be cancelled" in response.content.decode()
    message.refresh_from_db()
    assert message.status == "sent"


def test_provider_test_send_asks_for_an_address_then_sends_through_that_provider(client, ops):
    provider = Provider.objects.create(name="Sandbox mail", channel="email", kind="sandbox")
    client.force_login(ops)
    url = "/admin/messaging/provider/"
    form_page = client.post(url, {"action": "send_test", "_selected_action": [provider.pk]})
    assert form_page.status_code == 200 and 'name="to"' in form_page.content.decode()
    done = client.post(url, {"action": "send_test", "_selected_action": [provider.pk], "to": "ops@example.com"}, follow=True)
    assert "Sent" in done.content.decode()
    caught = SandboxMessage.objects.get()
    assert caught.to_address == "ops@example.com" and caught.provider == provider
    assert AuditEntry.objects.filter(verb="test-sent", actor=ops).exists()


def test_provider_test_send_to_a_bad_address_says_so(client, ops):
    provider = Provider.objects.create(name="Sandbox mail", channel="email", kind="sandbox")
    client.force_login(ops)
    response = client.post(
        "/admin/messaging/provider/", {"action": "send_test", "_selected_action": [provider.pk], "to": "not-an-email"}, follow=True
    )
    assert "not a valid email" in response.content.decode()
    assert not SandboxMessage.objects.exists()


def test_sandbox_inbox_lists_what_was_caught(client, marketer):
    enqueue_message(channel="email", to="carol@example.com", subject="Welcome aboard", text="Hi")
    send_due_messages()
    client.force_login(marketer)
    page = client.get("/admin/messaging/sandboxmessage/").content.decode()
    assert "Welcome aboard" in page and "carol@example.com" in page
