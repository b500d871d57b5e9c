"""Retention (issue 21, item 5): the nightly job empties old message bodies and deletes old
delivery events in bounded, resumable batches; queued and sending messages, consent records
and the audit trail are never touched; pages say plainly when content was deleted.

The analytics side (rollups and reports before and after pruning) is proven in
tests/marketing/test_retention_reports.py, through the real fan-out and rollup job."""

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core import checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import ngettext
from django_q.models import Schedule
from rest_framework.test import APIClient

from messaging.attachments import NewAttachment
from messaging.audit import record_audit
from messaging.consent import subscribe
from messaging.delivery import retention
from messaging.delivery.outbox import enqueue_message, requeue_failed, retry_message
from messaging.delivery.retention import prune_old_messages
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import public_link
from messaging.errors import NotAllowed
from messaging.models import Attachment, AuditEntry, ConsentRecord, DeliveryEvent, OutboxMessage, SandboxMessage
from messaging.schedules import FIRST_RUNS, SCHEDULES, ensure_schedules
from messaging.tasks import prune_old_messages as prune_task

pytestmark = pytest.mark.django_db
Status = OutboxMessage.Status
BASE = "http://127.0.0.1:8000"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8


@pytest.fixture(autouse=True)
def _setup(settings, tmp_path):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Poste, Paris"
    settings.MAILROOM_BODY_RETENTION_DAYS = 180
    settings.MAILROOM_EVENT_RETENTION_DAYS = 400
    settings.STORAGES = settings.STORAGES | {
        "mailroom_attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "attachments")},
        }
    }


def stored_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "attachments"
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def sent_message(contact, newsletter, *, subject="News", days_ago=0, attachment=False) -> OutboxMessage:
    """A newsletter sent through the sandbox `days_ago` days ago, as the app sends it."""
    with time_machine.travel(timezone.now() - timedelta(days=days_ago), tick=False):
        message = enqueue_message(
            channel="email",
            contact=contact,
            topic=newsletter,
            subject=subject,
            html=f"<p>{subject} body</p>",
            text=f"{subject} text",
            headers={"X-Campaign-Note": "spring"},
            metadata={"purpose": "newsletter", "order_ref": "A-1042"},
            attachments=[NewAttachment("invoice.pdf", PDF, "application/pdf")] if attachment else None,
        )
        send_due_messages()
    message.refresh_from_db()
    assert message.status == Status.SENT
    return message


def waiting_message(contact, newsletter, *, status: str, days_ago: int) -> OutboxMessage:
    """An old message the send path still holds: scheduled far ahead, or claimed by a worker."""
    with time_machine.travel(timezone.now() - timedelta(days=days_ago), tick=False):
        message = enqueue_message(
            channel="email",
            contact=contact,
            topic=newsletter,
            subject="Later",
            text="still to go",
            scheduled_at=timezone.now() + timedelta(days=days_ago + 30),
        )
    if status == Status.SENDING:
        OutboxMessage.objects.filter(pk=message.pk).update(status=Status.SENDING, lease_until=timezone.now() + timedelta(minutes=2))
    message.refresh_from_db()
    return message


@pytest.fixture
def subscribed(contact, newsletter):
    subscribe(actor=None, contact=contact, topic=newsletter)
    return contact


def test_old_finished_messages_lose_their_content_and_nothing_else_does(
    subscribed, newsletter, tmp_path, admin_user, django_capture_on_commit_callbacks
):
    # given an old newsletter with a file, an old failed one, a young one, and old ones the send path holds
    old = sent_message(subscribed, newsletter, subject="Old news", days_ago=200, attachment=True)
    young = sent_message(subscribed, newsletter, subject="Fresh news", days_ago=10)
    failed = sent_message(subscribed, newsletter, subject="Old failure", days_ago=190)
    OutboxMessage.objects.filter(pk=failed.pk).update(status=Status.FAILED, error="mailbox full")
    queued = waiting_message(subscribed, newsletter, status=Status.QUEUED, days_ago=300)
    sending = waiting_message(subscribed, newsletter, status=Status.SENDING, days_ago=300)
    record_audit(actor=admin_user, verb="requeued", target=old)
    assert len(stored_files(tmp_path)) == 1 and SandboxMessage.objects.get(message=old).body_html
    consent_before = list(ConsentRecord.objects.order_by("pk").values())
    audit_before = list(AuditEntry.objects.order_by("pk").values())
    kept_before = {
        m.pk: (m.body_text, m.body_html, m.headers) for m in OutboxMessage.objects.filter(pk__in=[young.pk, queued.pk, sending.pk])
    }

    # when the nightly job runs (and its transaction commits)
    with django_capture_on_commit_callbacks(execute=True):
        result = prune_old_messages()

    # then the old finished ones keep their row, subject and status, and lose the content
    assert (result.bodies, result.attachments, result.sandbox, result.finished) == (2, 1, 2, True)
    old.refresh_from_db()
    assert (old.subject, old.status, old.body_text, old.body_html, old.headers) == ("Old news", Status.SENT, "", "", {})
    assert old.body_pruned_at is not None and old.has_attachments is False
    assert old.metadata == {"purpose": "newsletter"}  # what reports count it by; the caller's own data went
    assert not Attachment.objects.filter(message=old).exists() and stored_files(tmp_path) == []
    copy = SandboxMessage.objects.get(message=old)
    assert (copy.subject, copy.body_text, copy.body_html, copy.source, copy.headers) == ("Old news", "", "", "", {})
    failed.refresh_from_db()
    assert failed.status == Status.FAILED and failed.body_text == "" and failed.error == "mailbox full"
    # the young one and those the send path holds are untouched
    for message in OutboxMessage.objects.filter(pk__in=kept_before):
        assert message.body_pruned_at is None and (message.body_text, message.body_html, message.headers) == kept_before[message.pk]
    assert SandboxMessage.objects.get(message=young).body_html
    assert OutboxMessage.objects.get(pk=queued.pk).status == Status.QUEUED
    assert OutboxMessage.objects.get(pk=sending.pk).status == Status.SENDING
    # consent records and the audit trail are exactly as they were
    assert list(ConsentRecord.objects.order_by("pk").values()) == consent_before
    assert list(AuditEntry.objects.order_by("pk").values()) == audit_before


UPDATE_IDS = re.compile(r'UPDATE "messaging_outboxmessage" .*"messaging_outboxmessage"\."id" IN \(([^)]*)\)')


def test_batches_are_bounded_and_a_run_out_of_time_is_carried_on_by_the_next(subscribed, newsletter):
    # given ten old sent messages
    old = [sent_message(subscribed, newsletter, subject=f"Old {n}", days_ago=200) for n in range(10)]
    runs = []
    # when each run may only do one batch of three (its time budget is spent after one)
    while True:
        with CaptureQueriesContext(connection) as queries:
            result = prune_old_messages(batch_size=3, time_budget=0)
        updated = [len(match.group(1).split(",")) for q in queries.captured_queries if (match := UPDATE_IDS.search(q["sql"]))]
        # then no statement touches more than three messages
        assert updated and max(updated) <= 3
        runs.append(result.bodies)
        if result.finished:
            break
        assert len(runs) < 10, "the job never finished"
    # and each run carried on where the last one stopped, oldest first, until all were done
    assert runs == [3, 3, 3, 1]
    assert not OutboxMessage.objects.filter(pk__in=[m.pk for m in old], body_pruned_at__isnull=True).exists()
    # a later run finds nothing more to do
    assert prune_old_messages(batch_size=3).as_dict() | {"finished": True} == retention.RetentionResult().as_dict()


def test_with_time_to_spare_one_run_does_every_batch(subscribed, newsletter):
    for n in range(7):
        sent_message(subscribed, newsletter, subject=f"Old {n}", days_ago=181)
    result = prune_old_messages(batch_size=3, time_budget=60)
    assert (result.bodies, result.batches, result.finished) == (7, 3, True)


def test_zero_days_keeps_bodies_and_events_forever(subscribed, newsletter, settings):
    settings.MAILROOM_BODY_RETENTION_DAYS = 0
    settings.MAILROOM_EVENT_RETENTION_DAYS = 0
    ancient = sent_message(subscribed, newsletter, subject="Ancient", days_ago=3000)
    DeliveryEvent.objects.create(message=ancient, kind=DeliveryEvent.Kind.OPENED, occurred_at=timezone.now() - timedelta(days=2999))
    events = list(DeliveryEvent.objects.filter(message=ancient).values_list("kind", flat=True).order_by("kind"))
    assert events == ["delivered", "opened"]
    result = prune_old_messages()
    ancient.refresh_from_db()
    assert (result.bodies, result.events) == (0, 0)
    assert ancient.body_html and ancient.body_pruned_at is None
    assert list(DeliveryEvent.objects.filter(message=ancient).values_list("kind", flat=True).order_by("kind")) == events


def test_events_stay_until_the_analytics_rollups_have_counted_them(subscribed, newsletter):
    # given a delivery and an open 500 days old, and no analytics rollup has ever run
    old = sent_message(subscribed, newsletter, subject="Old", days_ago=501)
    DeliveryEvent.objects.create(message=old, kind=DeliveryEvent.Kind.OPENED, occurred_at=timezone.now() - timedelta(days=500))
    # when the job runs, the events stay: nothing has counted them yet (marketing's horizon says None)
    assert prune_old_messages().events == 0
    assert sorted(DeliveryEvent.objects.filter(message=old).values_list("kind", flat=True)) == ["delivered", "opened"]
    # the body, which the rollups never read, goes regardless
    assert OutboxMessage.objects.get(pk=old.pk).body_pruned_at is not None


def test_negative_settings_are_refused_by_a_system_check(settings):
    settings.MAILROOM_BODY_RETENTION_DAYS = -1
    settings.MAILROOM_RETENTION_BATCH = 0
    settings.MAILROOM_RETENTION_TIME_BUDGET_SECONDS = 900
    found = {error.id: error.msg for error in checks.run_checks() if error.id.startswith("messaging.E")}
    assert "MAILROOM_BODY_RETENTION_DAYS=-1 is negative" in found["messaging.E002"]
    assert "a batch must hold at least one row" in found["messaging.E003"]
    assert "less than the task queue's timeout (300 s)" in found["messaging.E004"]
    # and the job itself refuses to run on them, touching nothing
    with pytest.raises(ValueError, match="0 or more"):
        prune_old_messages(body_days=-1)


def test_good_settings_pass_the_check(settings):
    assert not [error for error in checks.run_checks() if error.id in {"messaging.E002", "messaging.E003", "messaging.E004"}]


def test_view_in_browser_says_plainly_that_the_content_was_deleted(client, subscribed, newsletter):
    old = sent_message(subscribed, newsletter, subject="Old news", days_ago=200)
    url = public_link(old.pk, "__MAILROOM_VIEW__").removeprefix(BASE)
    assert "Old news body" in client.get(url).content.decode()  # before: the email as sent

    prune_old_messages()

    response = client.get(url)
    page = html.unescape(response.content.decode())
    old.refresh_from_db()
    with translation.override(subscribed.locale):  # the page speaks the recipient's language
        when = date_format(timezone.localtime(old.body_pruned_at), "DATE_FORMAT")
        said = ngettext(
            "This message's content was deleted on %(date)s under the retention policy (%(days)s day).",
            "This message's content was deleted on %(date)s under the retention policy (%(days)s days).",
            180,
        ) % {"date": when, "days": 180}
    assert response.status_code == 410
    assert said in page
    assert "Old news body" not in page and "mailroom/public.css" in page  # the public pages' own style
    assert "script-src 'none'" in response["Content-Security-Policy"] and "style-src 'self'" in response["Content-Security-Policy"]


def test_the_console_message_page_says_the_content_was_deleted(client, ops, subscribed, newsletter):
    old = sent_message(subscribed, newsletter, subject="Old news", days_ago=200, attachment=True)
    prune_old_messages()
    client.force_login(ops)
    page = html.unescape(client.get(f"/admin/messaging/outboxmessage/{old.pk}/change/").content.decode())
    assert "This message's content was deleted on" in page and "under the retention policy (180 days)." in page
    assert "Old news body" not in page and "invoice.pdf" not in page
    copy = SandboxMessage.objects.get(message=old)
    assert "under the retention policy (180 days)." in client.get(f"/admin/messaging/sandboxmessage/{copy.pk}/change/").content.decode()


def test_the_api_says_when_a_messages_content_was_deleted(subscribed, newsletter, ops):
    old = sent_message(subscribed, newsletter, subject="Old news", days_ago=200)
    api = APIClient()
    api.force_authenticate(ops)
    assert api.get(f"/api/v1/messages/{old.pk}/").json()["body_pruned_at"] is None
    prune_old_messages()
    body = api.get(f"/api/v1/messages/{old.pk}/").json()
    assert body["body_pruned_at"] is not None and body["subject"] == "Old news" and body["status"] == "sent"


def test_a_pruned_message_cannot_be_sent_again(subscribed, newsletter, admin_user):
    old = sent_message(subscribed, newsletter, subject="Old", days_ago=200)
    OutboxMessage.objects.filter(pk=old.pk).update(status=Status.FAILED)
    prune_old_messages()
    with pytest.raises(NotAllowed, match="deleted under the retention policy"):
        retry_message(actor=admin_user, message=old)
    assert requeue_failed(actor=admin_user) == 0
    assert OutboxMessage.objects.get(pk=old.pk).status == Status.FAILED


def test_the_nightly_schedule_runs_the_job_and_logs_its_counts(subscribed, newsletter, caplog):
    assert {"name": "prune old messages", "func": "messaging.tasks.prune_old_messages", "schedule_type": Schedule.DAILY} in SCHEDULES
    ensure_schedules()
    schedule = Schedule.objects.get(name="prune old messages")
    assert timezone.localtime(schedule.next_run).time().hour == 3 and "prune old messages" in FIRST_RUNS
    sent_message(subscribed, newsletter, subject="Old", days_ago=200)
    with caplog.at_level("INFO", logger="messaging.tasks"):
        counts = prune_task()
    assert counts["bodies"] == 1 and counts["finished"] is True
    assert "retention: 1 message bodies pruned (0 attachments, 1 sandbox copies), 0 events deleted" in caplog.text
    assert not AuditEntry.objects.filter(verb__icontains="prune").exists()  # a system job: a log line, no audit entry


@pytest.mark.postgres
def test_the_batch_select_reads_an_index_not_the_whole_outbox(subscribed, newsletter):
    # given an outbox of several thousand rows: a year of old ones, two in three already pruned,
    # and as many young ones
    contact_id, topic_id = subscribed.pk, newsletter.pk
    now = timezone.now()
    rows = [
        OutboxMessage(
            channel="email",
            contact_id=contact_id,
            topic_id=topic_id,
            to_address=f"p{n}@example.com",
            subject="x",
            body_text="x",
            status=Status.SENT,
            next_attempt_at=now,
            body_pruned_at=now if n % 3 and n < 6000 else None,
        )
        for n in range(12000)
    ]
    created = OutboxMessage.objects.bulk_create(rows, batch_size=1000)
    old = [message.pk for message in created[:6000]]
    for start in range(0, len(old), 1000):
        OutboxMessage.objects.filter(pk__in=old[start : start + 1000]).update(created_at=now - timedelta(days=365))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE messaging_outboxmessage")
    query = (
        OutboxMessage.objects.filter(retention.PRUNABLE, created_at__lt=now - timedelta(days=180))
        .order_by("created_at", "id")
        .values_list("pk", "has_attachments", "metadata")[:2000]
    )
    plan = query.explain()
    assert "outbox_retention" in plan and "Seq Scan on messaging_outboxmessage" not in plan, plan
