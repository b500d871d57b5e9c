"""Mailroom as a host project's EMAIL_BACKEND: Django's email API queues outbox messages
that reach a real SMTP server (or an ESP's API, or the sandbox) intact."""

import email
import email.policy
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives, send_mail
from django.db import connection

from messaging.backend import EmailBackend
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.models import Attachment, OutboxMessage, Provider, Topic
from tests.support.cluster import database_env
from tests.support.host_project.send import PDF, PNG
from tests.support.local_http import LocalServer
from tests.support.smtp_sink import SMTPSink

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def outbox_backend(settings, tmp_path) -> Path:
    settings.MAILROOM_KICK_CLUSTER = False
    settings.EMAIL_BACKEND = "messaging.backend.EmailBackend"
    folder = tmp_path / "attachments"
    settings.STORAGES = settings.STORAGES | {
        "mailroom_attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(folder)}}
    }
    return folder


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.django_db(transaction=True)
def test_a_host_project_sends_through_mailroom_to_a_real_smtp_server(outbox_backend):
    # given Mailroom's SMTP provider, and a receipts topic
    Topic.objects.create(key="receipts", name="Receipts", kind=Topic.Kind.TRANSACTIONAL)
    with SMTPSink() as sink:
        Provider.objects.create(name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": sink.port})
        # when a host project (its own process and settings) sends an email the Django way
        env = (
            os.environ
            | {
                "DJANGO_SETTINGS_MODULE": "tests.support.host_project.settings",
                "MAILROOM_ATTACHMENT_DIR": str(outbox_backend),
            }
            | database_env(connection.settings_dict)
        )
        env.pop("MAILROOM_TEST_SQLITE_PATH", None)
        done = subprocess.run([sys.executable, "-m", "tests.support.host_project.send"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        # then it is queued: one transactional message per recipient, under the header's topic
        rows = list(OutboxMessage.objects.order_by("id"))
        assert [row.to_address for row in rows] == ["ada@example.com", "bob@example.com", "audit@example.com"]
        assert {row.priority for row in rows} == {OutboxMessage.Priority.TRANSACTIONAL}
        assert {row.topic.key for row in rows} == {"receipts"}
        assert len({row.metadata["email_group"] for row in rows}) == 1
        assert rows[0].dedup_key == "order:A-17:ada@example.com"
        # and once sent, each recipient got the email intact
        assert send_due_messages() == 3
        assert len(sink.messages) == 3
    for raw in sink.messages:
        received = parsed(raw)
        assert received["Subject"] == "Your order {{ not a template }}"
        assert received["From"] == "Shop <shop@example.com>"
        assert received["To"] == "Ada Lovelace <ada@example.com>"
        assert received["Cc"] == "bob@example.com"
        assert received["Bcc"] is None
        assert received["Reply-To"] == "help@example.com"
        assert received["X-Order"] == "A-17"
        assert received["X-Mailroom-Topic"] is None and received["X-Mailroom-Dedup-Key"] is None
        assert received.get_body(("plain",)).get_content().strip() == "Thanks for your order."
        assert 'src="cid:logo@shop.example"' in received.get_body(("html",)).get_content()
        files = {part.get_filename(): part for part in received.iter_attachments()}
        assert files["order.pdf"].get_content() == PDF and files["order.pdf"].get_content_type() == "application/pdf"
        logo = next(part for part in received.walk() if part.get_content_type() == "image/png")
        assert logo["Content-ID"] == "<logo@shop.example>" and logo.get_content() == PNG
    assert len({parsed(raw)["Message-ID"] for raw in sink.messages}) == 3


@pytest.mark.django_db
def test_send_mail_queues_under_the_default_topic_and_the_sandbox_keeps_it(settings):
    settings.MAILROOM_BACKEND_TOPIC = "receipts"
    Topic.objects.create(key="receipts", name="Receipts", kind=Topic.Kind.TRANSACTIONAL)
    Provider.objects.create(name="Sandbox", channel="email", kind="sandbox")
    assert send_mail("Hello", "Plain body {{ x }}", "shop@example.com", ["ada@example.com"]) == 1
    message = OutboxMessage.objects.get()
    assert (message.topic.key, message.body_text, message.has_attachments) == ("receipts", "Plain body {{ x }}", False)
    assert send_due_messages() == 1


@pytest.mark.django_db
def test_an_esp_provider_sends_while_mailroom_itself_is_the_email_backend():
    # given EMAIL_BACKEND is Mailroom's and the provider is an ESP (a Django email backend too)
    with LocalServer(lambda request: (200, {"To": "ada@example.com", "MessageID": "pm-1", "ErrorCode": 0, "Message": "OK"})) as api:
        Provider.objects.create(
            name="ESP",
            channel="email",
            kind="anymail",
            config={"backend": "anymail.backends.postmark.EmailBackend", "options": {"server_token": "k", "api_url": api.url + "/"}},
        )
        email_message = EmailMultiAlternatives("Hi", "Text", "shop@example.com", ["ada@example.com"], cc=["bob@example.com"])
        email_message.attach("a.pdf", PDF, "application/pdf")
        email_message.send()
        # then the ESP gets one call per recipient, each to that recipient only: no loop
        assert send_due_messages() == 2
    assert OutboxMessage.objects.filter(status=OutboxMessage.Status.SENT).count() == 2
    assert sorted(request.json()["To"] for request in api.requests) == ["ada@example.com", "bob@example.com"]
    assert all("Cc" not in request.json() for request in api.requests)
    assert all(request.json()["Attachments"][0]["Name"] == "a.pdf" for request in api.requests)


@pytest.mark.django_db
def test_a_provider_never_sends_through_the_outbox_backend():
    Provider.objects.create(name="Loop", channel="email", kind="anymail", config={"backend": "messaging.backend.EmailBackend"})
    send_mail("Hi", "Text", "shop@example.com", ["ada@example.com"])
    send_due_messages()
    message = OutboxMessage.objects.get()
    assert message.status == OutboxMessage.Status.FAILED
    assert "messaging.backend.EmailBackend is not an email service backend" in message.error
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_attachment_queues_nothing(outbox_backend):
    email_message = EmailMessage("Hi", "Text", "shop@example.com", ["ada@example.com", "bob@example.com"])
    email_message.attach("tool.pdf", b"\x7fELF" + b"0" * 64, "application/pdf")
    with pytest.raises(InvalidInput) as refused:
        email_message.send()
    assert str(refused.value) == "“tool.pdf” is a program; programs cannot be attached."
    assert not OutboxMessage.objects.exists() and not Attachment.objects.exists()
    assert not outbox_backend.exists() or not any(path.is_file() for path in outbox_backend.rglob("*"))
    # failing silently: nothing queued, nothing raised
    assert EmailBackend(fail_silently=True).send_messages([email_message]) == 0
    assert not OutboxMessage.objects.exists()
