"""Recipient rows of a sent campaign said "queued" for ever: after the messages go out
(through the real send path, into the sandbox) the recipients page, its filters and the API
say what happened to each recipient — sent, failed, skipped — derived from its message."""

import pytest
from rest_framework.test import APIClient

from marketing.campaigns.tasks import run_campaigns
from marketing.models import Campaign
from messaging.consent import suppress_address
from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage, SandboxMessage

pytestmark = pytest.mark.django_db


def test_recipients_of_a_sent_campaign_are_not_left_queued(client, marketer, people, scheduled):
    # given a campaign sent to six people, one of them suppressed
    suppress_address(actor=None, address=people[0].email, channel="email", reason="manual")
    run_campaigns()  # starts it and fans out
    send_due_messages(owner="test")  # the real send path, into the sandbox
    run_campaigns()  # marks it sent
    scheduled.refresh_from_db()
    assert scheduled.state == Campaign.State.SENT
    assert SandboxMessage.objects.filter(to_address__in=[p.email for p in people]).count() == 5
    # then the recipients page shows each row as sent (or skipped), never queued
    client.force_login(marketer)
    page = client.get(f"/admin/marketing/campaign/{scheduled.pk}/recipients/").content.decode()
    assert "Sent (5)" in page and "Skipped (1)" in page and "Queued (" not in page and "Included (" not in page
    rows = client.get(f"/admin/marketing/campaign/{scheduled.pk}/recipients/", {"status": "sent"}).content.decode()
    assert rows.count('data-testid="recipient-row"') == 5
    # and so does the API, whose status filter finds them by what happened
    api = APIClient()
    api.force_authenticate(marketer)
    answer = api.get(f"/api/v1/campaigns/{scheduled.pk}/recipients/").json()["results"]
    assert sorted(row["status"] for row in answer) == ["sent"] * 5 + ["skipped"]
    assert api.get(f"/api/v1/campaigns/{scheduled.pk}/recipients/", {"status": "queued"}).json()["count"] == 0
    assert api.get(f"/api/v1/campaigns/{scheduled.pk}/recipients/", {"status": "sent"}).json()["count"] == 5


def test_a_failed_message_shows_its_recipient_as_failed(client, marketer, people, scheduled):
    run_campaigns()
    OutboxMessage.objects.filter(to_address=people[1].email).update(status=OutboxMessage.Status.FAILED, error="550 no such user")
    send_due_messages(owner="test")
    api = APIClient()
    api.force_authenticate(marketer)
    failed = api.get(f"/api/v1/campaigns/{scheduled.pk}/recipients/", {"status": "failed"}).json()["results"]
    assert [row["email"] for row in failed] == [people[1].email]
