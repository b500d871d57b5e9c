"""Attachments and inline images: stored with the message, on the wire of every provider
kind (a real SMTP server, an ESP's HTTP API, the sandbox), refused whole when too big or
disguised, deleted with their row and with the contact's erasure."""

import base64
import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.files.storage import storages
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from messaging.attachments import NewAttachment
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.erasure import scrub_personal_data
from messaging.errors import InvalidInput
from messaging.models import Attachment, OutboxMessage, Provider, SandboxMessage
from messaging.tasks import clean_orphaned_attachment_files
from tests.support.local_http import LocalServer
from tests.support.smtp_sink import SMTPSink

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
TEN_MB = (b"%PDF-1.7\n" + bytes(range(256)) * 40960)[: 10 * 1024 * 1024]
HTML = '<p>Your invoice</p><img src="cid:logo@shop.example">'


@pytest.fixture(autouse=True)
def attachment_dir(settings, tmp_path) -> Path:
    settings.MAILROOM_KICK_CLUSTER = False
    folder = tmp_path / "attachments"
    settings.STORAGES = settings.STORAGES | {
        "mailroom_attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(folder)}}
    }
    return folder


def stored_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def invoice(to: str = "ada@example.com", pdf: bytes = TEN_MB, **extra) -> OutboxMessage:
    return enqueue_message(
        channel="email",
        to=to,
        subject="Your invoice",
        text="Your invoice is attached.",
        html=HTML,
        priority=OutboxMessage.Priority.TRANSACTIONAL,
        attachments=[
            NewAttachment("invoice.pdf", pdf, "application/pdf"),
            NewAttachment("logo.png", PNG, "image/png", content_id="logo@shop.example"),
        ],
        **extra,
    )


def assert_intact(raw: bytes, pdf: bytes = TEN_MB) -> None:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed.get_body(("plain",)).get_content().strip() == "Your invoice is attached."
    html = parsed.get_body(("html",))
    assert 'src="cid:logo@shop.example"' in html.get_content()
    files = {part.get_filename(): part for part in parsed.iter_attachments()}
    assert files["invoice.pdf"].get_content_type() == "application/pdf"
    assert files["invoice.pdf"].get_content() == pdf
    related = next(part for part in parsed.walk() if part.get_content_type() == "multipart/related")
    logo = next(part for part in related.iter_parts() if part.get_content_type() == "image/png")
    assert logo["Content-ID"] == "<logo@shop.example>"
    assert logo.get_content_disposition() == "inline"
    assert logo.get_content() == PNG


def test_a_10_mb_attachment_and_an_inline_image_arrive_intact_over_smtp():
    # given an SMTP provider (a real server on loopback) and an invoice of exactly 10 MB
    assert len(TEN_MB) == 10 * 1024 * 1024
    with SMTPSink() as sink:
        Provider.objects.create(name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": sink.port})
        message = invoice()
        # when it is sent
        assert send_due_messages() == 1
        message.refresh_from_db()
        assert message.status == OutboxMessage.Status.SENT, message.error
        # then the server got the body, the PDF byte for byte and the inline logo
        assert_intact(sink.messages[0])


def test_attachments_go_to_an_esp_api_as_its_attachments():
    # given an ESP (Postmark's API, served on loopback) as the email provider
    with LocalServer(lambda request: (200, {"To": "ada@example.com", "MessageID": "pm-1", "ErrorCode": 0, "Message": "OK"})) as api:
        Provider.objects.create(
            name="ESP",
            channel="email",
            kind="anymail",
            config={"backend": "anymail.backends.postmark.EmailBackend", "options": {"server_token": "k", "api_url": api.url + "/"}},
        )
        message = invoice()
        assert send_due_messages() == 1
        message.refresh_from_db()
        assert message.status == OutboxMessage.Status.SENT, message.error
    # then the API call carried both files, the logo as an inline part the HTML refers to
    payload = api.requests[0].json()
    files = {item["Name"]: item for item in payload["Attachments"]}
    assert base64.b64decode(files["invoice.pdf"]["Content"]) == TEN_MB
    assert files["invoice.pdf"]["ContentType"] == "application/pdf"
    assert base64.b64decode(files["logo.png"]["Content"]) == PNG
    assert files["logo.png"]["ContentID"] == "cid:logo@shop.example"
    assert 'src="cid:logo@shop.example"' in payload["HtmlBody"]


def test_the_sandbox_keeps_the_message_with_its_attachments():
    Provider.objects.create(name="Sandbox", channel="email", kind="sandbox")
    invoice()
    assert send_due_messages() == 1
    assert_intact(SandboxMessage.objects.get().source.encode())


def test_a_message_without_attachments_costs_no_attachment_query():
    # given a batch of plain messages, and the same batch with one message carrying a file
    Provider.objects.create(name="Sandbox", channel="email", kind="sandbox")
    for n in range(3):
        enqueue_message(channel="email", to=f"p{n}@example.com", subject="Hi", text="Hello")
    with CaptureQueriesContext(connection) as plain:
        assert send_due_messages() == 3
    assert not [query for query in plain.captured_queries if "messaging_attachment" in query["sql"]]
    invoice(pdf=b"%PDF-1.4 small")
    for n in range(3):
        enqueue_message(channel="email", to=f"q{n}@example.com", subject="Hi", text="Hello")
    with CaptureQueriesContext(connection) as mixed:
        assert send_due_messages() == 4
    # then one query fetched the attachments of the one message that has some
    assert len([query for query in mixed.captured_queries if 'FROM "messaging_attachment"' in query["sql"]]) == 1


@pytest.mark.parametrize(
    ("attachment", "error"),
    [
        (
            NewAttachment("big.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), "application/pdf"),
            "“big.pdf” is 10.0 MB; the limit per file is 10.0 MB.",
        ),
        (
            NewAttachment("setup.pdf", b"MZ\x90\x00" + b"0" * 100, "application/pdf"),
            "“setup.pdf” is a program; programs cannot be attached.",
        ),
        (
            NewAttachment("notes.txt", b"<html><script>alert(1)</script></html>", "text/plain"),
            "“notes.txt” holds HTML or a script but is declared as text/plain.",
        ),
        (NewAttachment("page.html", b"<p>hi</p>", "text/html"), "“page.html”: the type text/html is not allowed as an attachment."),
        (NewAttachment("photo.png", b"GIF89a....", "image/png"), "“photo.png” is declared as image/png but its content is not."),
        (
            NewAttachment("a.txt", b"hello", "text/plain\r\nBcc: x@example.com"),
            "“a.txt”: the type text/plain\r\nbcc: x@example.com is not allowed as an attachment.",
        ),
    ],
)
def test_a_refused_attachment_writes_nothing(attachment, error, attachment_dir):
    # when a message carries a file over the limit, a program, hidden HTML or a disguised image
    with pytest.raises(InvalidInput) as refused:
        enqueue_message(channel="email", to="ada@example.com", subject="Hi", text="Hello", attachments=[attachment])
    # then the error names the file and the rule, and no row and no file were written
    assert str(refused.value) == error
    assert not OutboxMessage.objects.exists()
    assert not Attachment.objects.exists()
    assert stored_files(attachment_dir) == []


def test_the_message_limit_counts_every_file(settings, attachment_dir):
    settings.MAILROOM_ATTACHMENT_MAX_MESSAGE_BYTES = 1000
    files = [NewAttachment(f"part{n}.txt", b"x" * 600, "text/plain") for n in range(2)]
    with pytest.raises(InvalidInput) as refused:
        enqueue_message(channel="email", to="ada@example.com", subject="Hi", text="Hello", attachments=files)
    assert str(refused.value) == "The attachments come to more than 1 KB (at “part1.txt”); that is the limit per message."
    assert not OutboxMessage.objects.exists()
    assert stored_files(attachment_dir) == []


def test_files_are_deleted_with_their_message_and_with_the_contact(contact, attachment_dir, django_capture_on_commit_callbacks):
    # given two messages with files, one of them to a contact
    kept = invoice(to="bob@example.com", pdf=b"%PDF-1.4 a")
    erased = invoice(pdf=b"%PDF-1.4 b", contact=contact)
    assert len(stored_files(attachment_dir)) == 4
    # when the contact is erased, her message's files go
    with django_capture_on_commit_callbacks(execute=True):
        scrub_personal_data(contact=contact)
    assert len(stored_files(attachment_dir)) == 2
    assert not Attachment.objects.filter(message=erased).exists()
    erased.refresh_from_db()
    assert not erased.has_attachments
    # and when a message is deleted, its files go with its rows
    with django_capture_on_commit_callbacks(execute=True):
        kept.delete()
    assert stored_files(attachment_dir) == []
    assert storages["mailroom_attachments"].listdir("")[1] == []


def download_url(message: OutboxMessage) -> str:
    return reverse("admin:messaging_outboxmessage_attachment", args=[message.pk, message.attachments.get(content_id="").pk])


def test_the_outbox_page_lists_the_files_and_a_reader_downloads_them(client, ops):
    # given a message with an invoice, and Ops, who may read messages
    message = invoice(pdf=b"%PDF-1.4 the invoice")
    client.force_login(ops)
    # the message's page lists its files, each a download link
    page = client.get(reverse("admin:messaging_outboxmessage_change", args=[message.pk]))
    assert page.status_code == 200
    assert download_url(message) in page.text and "invoice.pdf" in page.text and "cid:logo@shop.example" in page.text
    # and the download is the file, as an attachment
    response = client.get(download_url(message))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 the invoice"
    assert response["Content-Disposition"].startswith('attachment; filename="invoice.pdf"')


def test_a_role_that_cannot_read_messages_cannot_download_their_files(client, approver):
    # given a message with a file, and an Approver (no access to the outbox)
    message = invoice(pdf=b"%PDF-1.4 the invoice")
    client.force_login(approver)
    # when they ask for the file by its address, they are refused
    response = client.get(download_url(message))
    assert response.status_code == 403
    assert b"the invoice" not in response.content


def test_nobody_downloads_the_files_of_a_message_carrying_a_secret(client, admin_user):
    message = invoice(pdf=b"%PDF-1.4 the invoice")
    OutboxMessage.objects.filter(pk=message.pk).update(is_sensitive=True)  # its body holds a sealed secret
    client.force_login(admin_user)
    assert client.get(download_url(message)).status_code == 403


def test_the_api_takes_attachments_as_base64(ops, attachment_dir):
    client = APIClient()
    client.force_authenticate(ops)
    payload = {
        "to": "ada@example.com",
        "subject": "Your invoice",
        "text": "Attached.",
        "html": HTML,
        "attachments": [
            {"filename": "invoice.pdf", "content_type": "application/pdf", "content": base64.b64encode(b"%PDF-1.4 api").decode()},
            {
                "filename": "logo.png",
                "content_type": "image/png",
                "content": base64.b64encode(PNG).decode(),
                "content_id": "logo@shop.example",
            },
        ],
    }
    response = client.post("/api/v1/messages/", payload, format="json")
    assert response.status_code == 201, response.json()
    message = OutboxMessage.objects.get(pk=response.json()["id"])
    assert message.has_attachments
    stored = {item.filename: item for item in message.attachments.all()}
    assert stored["invoice.pdf"].file.read() == b"%PDF-1.4 api" and stored["logo.png"].content_id == "logo@shop.example"
    # the message as the API shows it lists them (never their bytes)
    listed = client.get(f"/api/v1/messages/{message.pk}/").json()["attachments"]
    assert [(a["filename"], a["content_type"], a["size"], a["content_id"]) for a in listed] == [
        ("invoice.pdf", "application/pdf", 12, ""),
        ("logo.png", "image/png", len(PNG), "logo@shop.example"),
    ]
    assert "content" not in listed[0] and client.get("/api/v1/messages/").json()["results"][0]["attachments"] == listed
    # a refused file is a 400 naming it, and nothing is written
    payload["attachments"] = [{"filename": "run.pdf", "content_type": "application/pdf", "content": base64.b64encode(b"MZ..").decode()}]
    refused = client.post("/api/v1/messages/", payload, format="json")
    assert refused.status_code == 400
    assert "“run.pdf” is a program" in refused.json()["detail"]
    assert OutboxMessage.objects.count() == 1 and len(stored_files(attachment_dir)) == 2


def test_files_of_a_rolled_back_message_are_swept_by_the_daily_job(attachment_dir):
    kept = invoice(to="kept@example.com", pdf=b"%PDF-1.4 kept")

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        invoice(to="gone@example.com", pdf=b"%PDF-1.4 rolled back")
        raise Abandoned
    assert OutboxMessage.objects.count() == 1 and len(stored_files(attachment_dir)) == 4  # two of them unreferenced
    assert clean_orphaned_attachment_files() == 0  # too young: their transaction might still be open
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert clean_orphaned_attachment_files() == 2
    assert sorted(path.read_bytes()[:13] for path in stored_files(attachment_dir)) == sorted([b"%PDF-1.4 kept", PNG[:13]])
    assert [item.file.read() for item in kept.attachments.filter(filename="invoice.pdf")] == [b"%PDF-1.4 kept"]


def test_a_receipt_rendered_from_a_template_carries_its_pdf_through_the_api_to_the_wire(ops, receipts):
    # given a receipt template (its own subject and body, with the order number as a variable)
    template = create_template(actor=None, key="receipt", name="Receipt")
    version = save_template_version(
        actor=None,
        template=template,
        body_format="html",
        subject="Receipt for order {{ order }}",
        body="<p>Thank you for order {{ order }}.</p>",
        text_body="Thank you for order {{ order }}.",
    )
    activate_template_version(actor=None, version=version)
    client = APIClient()
    client.force_authenticate(ops)
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 64
    with SMTPSink() as sink:
        Provider.objects.create(name="SMTP", channel="email", kind="smtp", config={"host": "127.0.0.1", "port": sink.port})
        # when the host's shop sends it through the API with the PDF it generated
        response = client.post(
            "/api/v1/messages/",
            {
                "to": "ada@example.com",
                "template": "receipt",
                "topic": "receipts",
                "context": {"order": "A-1042"},
                "attachments": [
                    {"filename": "receipt-A-1042.pdf", "content_type": "application/pdf", "content": base64.b64encode(pdf).decode()}
                ],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        assert send_due_messages() == 1
        assert OutboxMessage.objects.get().status == OutboxMessage.Status.SENT
        # then the mail server receives the rendered receipt with the PDF byte for byte
        parsed = email.message_from_bytes(sink.messages[0], policy=email.policy.default)
    assert parsed["Subject"] == "Receipt for order A-1042"
    assert "Thank you for order A-1042." in parsed.get_body(("plain",)).get_content()
    assert "Thank you for order A-1042." in parsed.get_body(("html",)).get_content()
    [attached] = list(parsed.iter_attachments())
    assert attached.get_filename() == "receipt-A-1042.pdf" and attached.get_content() == pdf
