"""Message statistics (seed 001's MessageStats): totals by status and channel, events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.delivery.outbox import enqueue_message
from messaging.models import DeliveryEvent, OutboxMessage
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/stats/messages/"


def test_totals_by_status_and_channel_with_events(as_user, ops):
    sent = enqueue_message(channel="email", to="a@example.com", text="x")
    OutboxMessage.objects.filter(pk=sent.pk).update(status=OutboxMessage.Status.SENT)
    enqueue_message(channel="email", to="b@example.com", text="x")
    enqueue_message(channel="sms", to="+33612345678", text="x")
    DeliveryEvent.objects.create(message=sent, kind=DeliveryEvent.Kind.OPENED, occurred_at=timezone.now())
    body = as_user(ops).get(URL).json()
    assert body["total"] == 3
    assert body["by_status"]["sent"] == 1 and body["by_status"]["queued"] == 2 and body["by_status"]["failed"] == 0
    assert body["by_channel"]["email"] == {"total": 2, "by_status": {**body["by_channel"]["email"]["by_status"], "sent": 1, "queued": 1}}
    assert body["by_channel"]["sms"]["total"] == 1
    assert body["events"]["opened"] == 1
    assert as_user(ops).get(URL, {"channel": "sms"}).json()["total"] == 1


def test_date_range(as_user, marketer):
    old = enqueue_message(channel="email", to="a@example.com", text="x")
    OutboxMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    enqueue_message(channel="email", to="b@example.com", text="x")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert as_user(marketer).get(URL, {"since": since}).json()["total"] == 1


def test_bad_range_is_a_field_error(as_user, ops):
    now = timezone.now()
    body = assert_problem(as_user(ops).get(URL, {"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()}), 400)
    assert body["fields"] == {"until": ["Must be later than “since”."]}
    body = assert_problem(as_user(ops).get(URL, {"since": "yesterday"}), 400)
    assert "since" in body["fields"]


def test_stats_need_outbox_access(api, as_user, approver):
    assert_problem(as_user(approver).get(URL), 403)
    assert_problem(api.get(URL), 401)
