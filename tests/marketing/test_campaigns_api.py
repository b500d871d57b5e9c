"""The campaigns API (seed 003): a marketer creates and submits a draft, an approver approves
it, the marketer sends it; the dry run, the report and the recipients; four eyes, roles and
bad input answer with a problem and change nothing."""

import pytest
from rest_framework.test import APIClient

from marketing.campaigns.fanout import fan_out
from marketing.campaigns.tasks import run_campaigns
from marketing.models import Campaign
from messaging.consent import suppress_address
from messaging.delivery.sending import send_due_messages
from messaging.models import AuditEntry, OutboxMessage

pytestmark = pytest.mark.django_db
URL = "/api/v1/campaigns/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def draft_body(newsletter, segment, version, **extra):
    return {"name": "Spring sale", "topic": newsletter.key, "template_version": version.pk, "segments": [segment.pk], **extra}


def test_a_campaign_goes_from_draft_to_sent_through_the_api(marketer, approver, newsletter, segment, version, people):
    author, reviewer = client_for(marketer), client_for(approver)
    suppress_address(actor=None, address=people[0].email, channel="email", reason="manual")
    # given a draft created and submitted by the marketer
    created = author.post(URL, draft_body(newsletter, segment, version), format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["state"] == "draft" and created.json()["topic"] == "newsletter"
    dry = author.get(f"{URL}{pk}/dry-run/").json()
    assert (dry["eligible"], dry["suppressed"], len(dry["samples"])) == (5, 1, 5)
    assert author.post(f"{URL}{pk}/submit/").json()["state"] == "pending_approval"
    # when the author tries to approve it / then four eyes refuse, and the state stays
    own = author.post(f"{URL}{pk}/approve/")
    assert own.status_code == 403 and own.headers["Content-Type"].startswith("application/problem+json")
    assert Campaign.objects.get(pk=pk).state == "pending_approval"
    # when the approver approves and the marketer sends it now
    approved = reviewer.post(f"{URL}{pk}/approve/").json()
    assert approved["state"] == "approved" and approved["approved_by"] == str(approver)
    assert author.post(f"{URL}{pk}/schedule/").json()["state"] == "scheduled"

    run_campaigns()
    fan_out(campaign=Campaign.objects.get(pk=pk))
    send_due_messages()
    # then the recipients, the report and the audit trail say what happened
    recipients = author.get(f"{URL}{pk}/recipients/").json()
    assert recipients["count"] == 6
    skipped = author.get(f"{URL}{pk}/recipients/", {"status": "skipped"}).json()["results"]
    assert [(r["email"], r["skip_reason"]) for r in skipped] == [(people[0].email, "suppressed")]
    sent = author.get(f"{URL}{pk}/recipients/", {"status": "sent"}).json()["results"]
    assert len(sent) == 5 and {r["message_status"] for r in sent} == {OutboxMessage.Status.SENT}
    report = author.get(f"{URL}{pk}/report/").json()
    assert report["sent"] == 5
    verbs = AuditEntry.objects.filter(target_type="marketing.campaign", target_id=str(pk)).values_list("verb", flat=True)
    assert {"created", "submitted", "approved", "scheduled", "started"} <= set(verbs)


def test_an_unapproved_campaign_cannot_be_sent_through_the_api(marketer, newsletter, segment, version):
    author = client_for(marketer)
    pk = author.post(URL, draft_body(newsletter, segment, version), format="json").json()["id"]
    refused = author.post(f"{URL}{pk}/schedule/")
    assert refused.status_code == 409 and refused.json()["code"] == "campaign_state"
    assert Campaign.objects.get(pk=pk).state == "draft" and not OutboxMessage.objects.exists()


def test_editing_an_approved_campaign_sends_it_back_to_draft(marketer, approver, newsletter, segment, version, approved):
    changed = client_for(marketer).patch(f"{URL}{approved.pk}/", {"send_mode": "at", "send_at": "2031-01-01T09:00:00Z"}, format="json")
    assert changed.status_code == 200 and changed.json()["state"] == "draft" and changed.json()["approved_by"] is None
    renamed = client_for(marketer).patch(f"{URL}{approved.pk}/", {"name": "Spring sale II"}, format="json")
    assert renamed.json()["name"] == "Spring sale II"


def test_rejecting_needs_a_reason_and_tells_the_author_why(marketer, approver, pending):
    reviewer = client_for(approver)
    empty = reviewer.post(f"{URL}{pending.pk}/reject/", {"reason": ""}, format="json")
    assert empty.status_code == 400 and Campaign.objects.get(pk=pending.pk).state == "pending_approval"
    rejected = reviewer.post(f"{URL}{pending.pk}/reject/", {"reason": "Wrong discount code"}, format="json").json()
    assert rejected["state"] == "rejected" and rejected["rejection_reason"] == "Wrong discount code"


def test_pause_resume_and_cancel_through_the_api(marketer, sending):
    author = client_for(marketer)
    fan_out(campaign=sending)
    assert author.post(f"{URL}{sending.pk}/pause/").json()["state"] == "paused"
    assert author.post(f"{URL}{sending.pk}/pause/").status_code == 409
    assert author.post(f"{URL}{sending.pk}/resume/").json()["state"] == "sending"
    assert author.post(f"{URL}{sending.pk}/cancel/").json()["state"] == "cancelled"
    assert not OutboxMessage.objects.filter(campaign_recipient__campaign=sending, status=OutboxMessage.Status.QUEUED).exists()
    assert OutboxMessage.objects.filter(campaign_recipient__campaign=sending, status=OutboxMessage.Status.CANCELLED).count() == 6


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No topic"}, "topic"),
        ({"name": "X", "topic": "no-such-topic"}, "topic"),
        ({"name": "X", "topic": "newsletter", "template_version": 999999}, "template_version"),
        ({"name": "X", "topic": "newsletter", "ab_test_share": 95}, "ab_test_share"),
        ({"name": "X", "topic": "newsletter", "send_mode": "tomorrow"}, "send_mode"),
        ({"name": " ", "topic": "newsletter"}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(marketer, newsletter, body, field):
    response = client_for(marketer).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json()) and not Campaign.objects.exists()


def test_an_empty_audience_cannot_be_submitted(marketer, newsletter, version):
    author = client_for(marketer)
    pk = author.post(URL, {"name": "Nobody", "topic": newsletter.key, "template_version": version.pk}, format="json").json()["id"]
    refused = author.post(f"{URL}{pk}/submit/")
    assert refused.status_code == 400 and Campaign.objects.get(pk=pk).state == "draft"


def test_a_bad_recipient_filter_is_a_400(marketer, draft):
    response = client_for(marketer).get(f"{URL}{draft.pk}/recipients/", {"status": "pending"})
    assert response.status_code == 400 and "status" in str(response.json())


def test_roles_decide_who_may_create_approve_and_send(approver, support, draft):
    assert client_for(approver).post(URL, {"name": "X", "topic": "newsletter"}, format="json").status_code == 403
    assert client_for(approver).get(f"{URL}{draft.pk}/").status_code == 200
    assert client_for(support).get(URL).status_code == 403
    assert APIClient().get(URL).status_code == 401
