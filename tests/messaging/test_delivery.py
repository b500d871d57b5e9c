"""The delivery engine through its actions, against a real SMTP server and a local HTTP API."""

import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from messaging.consent import subscribe, suppress_address, unsubscribe
from messaging.delivery.outbox import cancel_message, enqueue_message, requeue_failed, retry_message
from messaging.delivery.sending import claim_batch, send_due_messages
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import DeliveryAttempt, OutboxMessage, Provider, SandboxMessage, Suppression
from messaging.providers.email.headers import message_id_for
from tests.support.smtp_sink import SMTPSink, free_port

pytestmark = pytest.mark.django_db

Status = OutboxMessage.Status


@pytest.fixture(autouse=True)
def _quiet_cluster(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"


@pytest.fixture
def smtp_sink():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def smtp_provider(smtp_sink):
    return Provider.objects.create(
        name="Local SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port}
    )


def email(**kwargs) -> OutboxMessage:
    defaults = {"channel": "email", "to": "ada@example.com", "subject": "Hello", "text": "Hi there", "html": "<p>Hi there</p>"}
    return enqueue_message(**(defaults | kwargs))


def refreshed(message: OutboxMessage) -> OutboxMessage:
    message.refresh_from_db()
    return message


# --- enqueue and sandbox ------------------------------------------------------------------
def test_a_queued_email_lands_in_the_sandbox_by_default(contact):
    message = email(contact=contact, to=None, subject="Bonjour {{ contact.first_name }}", context={})
    assert send_due_messages() == 1
    message = refreshed(message)
    assert message.status == Status.SENT and message.sent_at is not None
    caught = SandboxMessage.objects.get()
    assert caught.subject == "Bonjour Ada" and caught.to_address == "ada@example.com"
    assert caught.headers["Message-ID"] == message.message_id
    assert DeliveryAttempt.objects.get(message=message).outcome == "sent"


def test_message_id_is_deterministic_per_message():
    message = email()
    assert message_id_for(message) == message_id_for(refreshed(message))
    assert message_id_for(message) != message_id_for(email(to="bob@example.com"))


def test_the_same_dedup_key_never_creates_a_second_message():
    first = email(dedup_key="order-42-receipt")
    second = email(dedup_key="order-42-receipt", subject="Another subject")
    assert first.pk == second.pk
    assert OutboxMessage.objects.count() == 1


def test_namespace_dedup_hashes_the_context():
    first = email(dedup_namespace="welcome", context={"user": 1})
    again = email(dedup_namespace="welcome", context={"user": 1})
    other = email(dedup_namespace="welcome", context={"user": 2})
    assert first.pk == again.pk != other.pk


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "fax"}, "Unknown channel"),
        ({"to": ""}, "No Email address"),
        ({"channel": "sms", "to": "12", "text": "hi"}, "phone number"),
        ({"subject": "Hi {{ name }}"}, "Missing template variable(s) in subject: name"),
        ({"html": "<p>{{ order.total }}</p>"}, "Missing template variable(s) in HTML: order"),
        ({"text": "{% if %}"}, "Line 1 of the text"),
        ({"text": "{{ settings.SECRET_KEY }}"}, "“settings” is not available"),
        ({"text": "{% load static %}"}, "is not allowed"),
        ({"text": "", "html": ""}, "needs a body"),
        ({"channel": "sms", "to": "+33612345678", "text": "x" * 1601}, "the limit is 1600"),
    ],
)
def test_bad_messages_are_refused_at_enqueue_with_a_clear_error(kwargs, message):
    with pytest.raises(InvalidInput) as error:
        email(**kwargs)
    assert message in str(error.value)
    assert OutboxMessage.objects.count() == 0


def test_marketing_email_is_blocked_without_a_postal_address(settings, contact, newsletter):
    settings.MAILROOM_SENDER_ADDRESS = ""
    with pytest.raises(NotAllowed, match="postal address"):
        email(contact=contact, topic=newsletter)
    assert OutboxMessage.objects.count() == 0


# --- send-time rules ------------------------------------------------------------------------
def test_a_suppressed_address_is_never_sent_to_even_transactional(receipts):
    suppress_address(actor=None, address="ada@example.com", channel="email", reason="complaint")
    message = email(topic=receipts)
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.SUPPRESSED and "complaint" in message.error
    assert not SandboxMessage.objects.exists()


def test_marketing_without_consent_is_suppressed_at_send_time(contact, newsletter):
    message = email(contact=contact, topic=newsletter)
    send_due_messages()
    assert refreshed(message).status == Status.SUPPRESSED
    assert "no consent" in refreshed(message).error


def test_marketing_with_consent_carries_one_click_unsubscribe_and_postal_address(contact, newsletter, smtp_provider, smtp_sink):
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = email(contact=contact, topic=newsletter)
    send_due_messages()
    assert refreshed(message).status == Status.SENT
    raw = smtp_sink.messages[0]
    assert b"List-Unsubscribe: <http" in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw
    assert b"1 rue de la Poste" in raw
    assert b"Unsubscribe" in raw


def test_unsubscribing_before_the_send_stops_a_queued_marketing_message(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    message = email(contact=contact, topic=newsletter)
    unsubscribe(actor=None, contact=contact, topic=newsletter)
    send_due_messages()
    assert refreshed(message).status == Status.SUPPRESSED


def test_scheduled_messages_wait_for_their_time():
    later = timezone.now() + timedelta(hours=2)
    message = email(scheduled_at=later)
    assert send_due_messages() == 0
    with time_machine.travel(later + timedelta(seconds=1)):
        assert send_due_messages() == 1
    assert refreshed(message).status == Status.SENT


# --- SMTP for real ----------------------------------------------------------------------------
def test_smtp_delivery_reuses_one_connection_for_the_batch(smtp_provider, smtp_sink):
    messages = [email(to=f"user{n}@example.com", subject=f"Über {n}") for n in range(20)]
    assert send_due_messages() == 20
    assert {refreshed(m).status for m in messages} == {Status.SENT}
    assert len(smtp_sink.messages) == 20
    raw = smtp_sink.messages[0]
    assert b"Subject: =?utf-8?" in raw  # non-ASCII subject encoded
    assert b"multipart/alternative" in raw
    assert Provider.objects.get(pk=smtp_provider.pk).sent_count == 20


def test_a_4xx_answer_is_retried_with_backoff_then_given_up(smtp_provider, smtp_sink, settings):
    settings.MAILROOM_FAILOVER_AFTER = 99
    message = email(to="soft-fail@example.com")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.QUEUED and message.attempts == 1 and "451" in message.error
    first_wait = (message.next_attempt_at - timezone.now()).total_seconds()
    assert 40 < first_wait < 80  # 60 s ± 20 % jitter
    now = timezone.now()
    for _ in range(3):
        now += timedelta(seconds=400)
        with time_machine.travel(now):
            send_due_messages()
    message = refreshed(message)
    assert message.status == Status.FAILED and message.attempts == 4
    assert message.error.startswith("gave up after 4 attempts")
    assert DeliveryAttempt.objects.filter(message=message, outcome="transient").count() == 4


@pytest.mark.parametrize("priority", [OutboxMessage.Priority.TRANSACTIONAL, OutboxMessage.Priority.NORMAL])
def test_each_retry_waits_the_steps_the_readme_states_for_its_priority(priority, smtp_provider, smtp_sink, settings):
    """The README names the waits; they come from settings, and each retry honours them."""
    settings.MAILROOM_FAILOVER_AFTER = 99
    steps = settings.MAILROOM_RETRY_BACKOFF.get(priority, settings.MAILROOM_RETRY_BACKOFF["default"])
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    stated = re.search(r"retry after ([\d/]+) s \(Transactional priority[^:]*: ([\d/]+) s\)", readme)
    assert stated, "the README no longer states the retry waits"
    documented = stated.group(2 if priority == OutboxMessage.Priority.TRANSACTIONAL else 1)
    assert documented == "/".join(str(step) for step in steps)
    message = email(to="soft-fail@example.com", priority=priority)
    now = timezone.now()
    for step in steps:
        with time_machine.travel(now, tick=False):
            send_due_messages()
        message = refreshed(message)
        wait = (message.next_attempt_at - now).total_seconds()
        assert message.status == Status.QUEUED and step * 0.8 <= wait <= step * 1.2
        now = message.next_attempt_at + timedelta(seconds=1)
    with time_machine.travel(now, tick=False):
        send_due_messages()
    message = refreshed(message)
    assert message.status == Status.FAILED and message.error.startswith(f"gave up after {len(steps) + 1} attempts")


def test_a_5xx_recipient_answer_fails_at_once_and_suppresses_the_address(smtp_provider, smtp_sink):
    message = email(to="hard-fail@example.com")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.FAILED and "550" in message.error and message.attempts == 1
    assert Suppression.objects.get(address="hard-fail@example.com").reason == "hard_bounce"


def test_unreachable_smtp_fails_over_to_the_next_provider(settings):
    dead = Provider.objects.create(
        name="Dead SMTP", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": free_port()}
    )
    backup = Provider.objects.create(name="Backup sandbox", channel="email", kind="sandbox", priority=2)
    message = email()
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.SENT and message.provider == backup
    dead.refresh_from_db()
    assert dead.consecutive_failures == 1 and "unreachable" in dead.last_error


def test_a_provider_that_keeps_failing_rests_and_the_next_takes_over(settings, smtp_sink):
    settings.MAILROOM_FAILOVER_AFTER = 3
    flaky = Provider.objects.create(
        name="Flaky", channel="email", kind="smtp", priority=1, config={"host": "127.0.0.1", "port": smtp_sink.port}
    )
    Provider.objects.create(name="Backup", channel="email", kind="sandbox", priority=2)
    for n in range(3):
        email(to=f"soft-fail-{n}@example.com")
    for n in range(5):
        email(to=f"fine{n}@example.com")
    send_due_messages()
    flaky.refresh_from_db()
    assert flaky.resting_until is not None and flaky.resting_until > timezone.now()
    assert OutboxMessage.objects.filter(to_address__startswith="fine", status=Status.SENT, provider__name="Backup").count() == 5


def test_a_misconfigured_only_provider_fails_messages_with_a_reason_not_a_crash_loop():
    Provider.objects.create(name="Broken SMS", channel="sms", kind="http", config={})
    message = enqueue_message(channel="sms", to="+33612345678", text="Hi")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.FAILED and "no URL configured" in message.error


# --- leases, cancel, retry --------------------------------------------------------------------
def test_a_dead_workers_lease_expires_and_the_batch_is_picked_up_again(settings):
    message = email()
    claimed = claim_batch(channel="email", limit=10, owner="worker-that-dies")
    assert [m.pk for m in claimed] == [message.pk]
    assert claim_batch(channel="email", limit=10, owner="other") == []  # leased
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.MAILROOM_LEASE_SECONDS + 1)):
        assert send_due_messages(owner="other") == 1
    message = refreshed(message)
    assert message.status == Status.SENT and message.attempts == 2


def test_cancel_then_retry(admin_user):
    message = email(scheduled_at=timezone.now() + timedelta(hours=1))
    cancel_message(actor=admin_user, message=message, reason="wrong audience")
    assert refreshed(message).status == Status.CANCELLED
    with pytest.raises(NotAllowed):
        cancel_message(actor=admin_user, message=message)
    retry_message(actor=admin_user, message=message)
    assert refreshed(message).status == Status.QUEUED
    assert send_due_messages() == 1


def test_requeue_failed_puts_failures_back(smtp_provider, smtp_sink):
    message = email(to="hard-fail@example.com")
    send_due_messages()
    Suppression.objects.all().delete()
    assert requeue_failed(actor=None) == 1
    message = refreshed(message)
    assert message.status == Status.QUEUED and message.attempts == 0


def test_rate_limit_caps_sends_per_second():
    Provider.objects.create(name="Slow sandbox", channel="email", kind="sandbox", rate_per_second=5)
    for n in range(12):
        email(to=f"u{n}@example.com")
    with time_machine.travel(timezone.now(), tick=False):
        assert send_due_messages() == 5
        assert send_due_messages() == 0
    assert OutboxMessage.objects.filter(status=Status.QUEUED).count() == 7


def test_rate_limit_per_hour_sends_three_in_an_hour_and_holds_the_rest():
    provider = Provider.objects.create(name="Hourly sandbox", channel="email", kind="sandbox", rate_per_hour=3)
    for n in range(5):
        email(to=f"u{n}@example.com")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert send_due_messages() == 3
        assert send_due_messages() == 0
    with time_machine.travel(start + timedelta(minutes=10), tick=False):  # half a token back
        assert send_due_messages() == 0
    # the held ones are queued, not failed, and were not charged an attempt
    held = OutboxMessage.objects.filter(status=Status.QUEUED)
    assert held.count() == 2 and set(held.values_list("attempts", flat=True)) == {0}
    with time_machine.travel(start + timedelta(hours=1, seconds=1), tick=False):
        assert send_due_messages() == 2
    assert OutboxMessage.objects.filter(status=Status.SENT, provider=provider).count() == 5


def test_after_failover_the_backup_providers_own_hourly_limit_applies(settings):
    settings.MAILROOM_FAILOVER_AFTER = 3
    Provider.objects.create(
        name="Dead SMTP", channel="email", kind="smtp", priority=1, rate_per_hour=100, config={"host": "127.0.0.1", "port": free_port()}
    )
    backup = Provider.objects.create(name="Small backup", channel="email", kind="sandbox", priority=2, rate_per_hour=2)
    for n in range(5):
        email(to=f"u{n}@example.com")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        send_due_messages()
        send_due_messages()  # the primary is tried again, and fails over again
    # the backup sent its own two for the hour, no more; the rest wait, none failed
    assert OutboxMessage.objects.filter(status=Status.SENT, provider=backup).count() == 2
    assert SandboxMessage.objects.count() == 2
    assert OutboxMessage.objects.filter(status=Status.QUEUED).count() == 3
    assert not OutboxMessage.objects.filter(status=Status.FAILED).exists()
    with time_machine.travel(start + timedelta(hours=1, minutes=5), tick=False):
        send_due_messages()
    assert OutboxMessage.objects.filter(status=Status.SENT, provider=backup).count() == 4


# --- HTTP API providers -----------------------------------------------------------------------
class FakeTwilio(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs(body).items()} if "json" not in self.headers["Content-Type"] else json.loads(body)
        FakeTwilio.received.append({"path": self.path, "form": form, "auth": self.headers.get("Authorization")})
        to = str(form.get("To") or form.get("to"))
        if "0000" in to:
            status, payload = 400, {"code": 21211, "message": "Invalid 'To' Phone Number"}
        elif "9999" in to:
            status, payload = 429, {"message": "Too many requests"}
        else:
            status, payload = 201, {"sid": f"SM{len(FakeTwilio.received)}"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_api():
    FakeTwilio.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def sms_provider(http_api, settings):
    settings.MAILROOM_SECRETS = {"TWILIO": "token-123"}
    return Provider.objects.create(
        name="Twilio-like",
        channel="sms",
        kind="http",
        config={"url": http_api + "/2010-04-01", "account_sid": "AC1", "from": "+33700000000", "token_secret": "TWILIO"},
    )


def test_sms_goes_through_the_http_api_with_auth(sms_provider):
    message = enqueue_message(channel="sms", to="06 12 34 56 78", text="Your code is 1234")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.SENT and message.provider_message_id == "SM1"
    request = FakeTwilio.received[0]
    assert request["path"] == "/2010-04-01/Accounts/AC1/Messages.json"
    assert request["form"] == {"From": "+33700000000", "To": "+33612345678", "Body": "Your code is 1234"}
    assert request["auth"].startswith("Basic ")


def test_whatsapp_uses_the_whatsapp_prefix(http_api, settings):
    settings.MAILROOM_SECRETS = {"TWILIO": "t"}
    Provider.objects.create(
        name="WA",
        channel="whatsapp",
        kind="http",
        config={"url": http_api, "account_sid": "AC1", "from": "+33700000000", "token_secret": "TWILIO"},
    )
    enqueue_message(channel="whatsapp", to="+33612345678", text="Hello")
    send_due_messages()
    assert FakeTwilio.received[0]["form"]["To"] == "whatsapp:+33612345678"


def test_http_429_is_temporary_and_4xx_bad_number_is_a_hard_bounce(sms_provider, settings):
    settings.MAILROOM_FAILOVER_AFTER = 99
    busy = enqueue_message(channel="sms", to="+33612349999", text="Hi")
    bad = enqueue_message(channel="sms", to="+33612340000", text="Hi")
    send_due_messages()
    assert refreshed(busy).status == Status.QUEUED and "429" in refreshed(busy).error
    assert refreshed(bad).status == Status.FAILED
    assert Suppression.objects.get(channel="sms").address == "+33612340000"


# Push (FCM HTTP v1, every device of the contact): tests/messaging/test_push_fcm.py


def test_dkim_signs_mail_when_a_key_is_configured(settings, smtp_sink, tmp_path):
    import base64
    import subprocess

    import dkim

    key_file = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key_file), "2048"], check=True, capture_output=True)
    public_der = subprocess.run(
        ["openssl", "rsa", "-in", str(key_file), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    settings.MAILROOM_SECRETS = {"DKIM": key_file.read_text()}
    Provider.objects.create(
        name="Signed SMTP",
        channel="email",
        kind="smtp",
        config={
            "host": "127.0.0.1",
            "port": smtp_sink.port,
            "dkim": {"selector": "mr", "domain": "example.com"},
            "dkim_key_secret": "DKIM",
        },
    )
    email(from_address="News <news@example.com>")
    send_due_messages()
    raw = smtp_sink.messages[0]
    assert raw.startswith(b"DKIM-Signature:")
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


def test_an_esp_through_django_anymail_gets_the_message_and_its_id(settings):
    from django.core import mail

    Provider.objects.create(name="ESP", channel="email", kind="anymail", config={"backend": "anymail.backends.test.EmailBackend"})
    message = email(subject="Via ESP")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.SENT and message.provider_message_id
    sent = mail.outbox[0]
    assert sent.subject == "Via ESP" and sent.to == ["ada@example.com"]
    assert sent.extra_headers["Message-ID"] == message.message_id


def test_an_esp_provider_without_a_backend_is_reported_as_misconfigured():
    Provider.objects.create(name="ESP", channel="email", kind="anymail", config={})
    message = email()
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.FAILED and "no email backend" in message.error
