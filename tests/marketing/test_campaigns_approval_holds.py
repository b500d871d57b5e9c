"""Invariant 9, "approved means approved": every path that changes what a second person
approved (the members or rules of the campaign's segments, guardrails, sender, schedule)
sends the campaign back to draft with the reason in the audit, so a dry run or a send never
reaches contacts nobody approved. Each test drives the real path (console HTTP, API, task)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from marketing.campaigns.actions import (
    approve_campaign,
    pause_campaign,
    reopen_campaign,
    schedule_campaign,
    start_campaign,
    submit_campaign,
)
from marketing.campaigns.states import CampaignStateError
from marketing.models import Campaign, CampaignRecipient
from marketing.segments.actions import add_static_members, create_segment, refresh_segment, update_segment
from marketing.tasks import run_campaigns
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, OutboxMessage
from tests.marketing.conftest import make_people, make_segment, new_campaign, wizard_form
from tests.marketing.test_segments import group, rule

pytestmark = pytest.mark.django_db
State = Campaign.State


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def returned_to_draft(campaign) -> list[str]:
    """The reasons audited for each return to draft of this campaign."""
    rows = AuditEntry.objects.filter(target_type="marketing.campaign", target_id=str(campaign.pk), verb="returned to draft")
    return [row.changes.get("reason", "") for row in rows.order_by("pk")]


@pytest.fixture
def one_person_campaign(marketer, approver, newsletter, version):
    """An approved campaign whose static segment holds one person, and 5 others who are not in it."""

    first, *others = make_people(newsletter, 6, prefix="vip")
    segment = make_segment("One VIP", [first])
    campaign = new_campaign(marketer, newsletter, segment, version)
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    return campaign, segment, first, others


def bring_to(state, campaign, marketer):
    if state == State.SCHEDULED:
        schedule_campaign(actor=marketer, campaign=campaign)
    elif state == State.PENDING_APPROVAL:
        reopen_campaign(actor=marketer, campaign=campaign)
        submit_campaign(actor=marketer, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.state == state


@pytest.mark.parametrize("state", [State.PENDING_APPROVAL, State.APPROVED, State.SCHEDULED])
def test_adding_members_to_the_segment_of_an_approved_campaign_cannot_widen_what_is_sent(
    client, marketer, one_person_campaign, state, settings
):
    campaign, segment, first, others = one_person_campaign
    settings.MAILROOM_KICK_CLUSTER = False
    bring_to(state, campaign, marketer)
    # when the marketer adds five contacts to the approved campaign's segment in the console
    client.force_login(marketer)
    response = client.post(
        f"/admin/marketing/segment/{segment.pk}/builder/add-members/", {"identifiers": "\n".join(p.email for p in others)}
    )
    assert response.status_code == 302
    # then the campaign is a draft again, the reason names the segment
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT and campaign.approved_by is None
    assert any("One VIP" in reason for reason in returned_to_draft(campaign))
    # and nothing reaches anyone without a new approval: it cannot be scheduled, and the tick sends nothing
    with pytest.raises(CampaignStateError):
        schedule_campaign(actor=marketer, campaign=campaign)
    run_campaigns()
    send_due_messages(owner="test")
    assert not OutboxMessage.objects.filter(to_address__in=[p.email for p in [first, *others]]).exists()
    assert not CampaignRecipient.objects.filter(campaign=campaign).exists()


def test_removing_a_member_of_an_excluded_segment_returns_the_campaign_to_draft(client, marketer, approver, newsletter, version):
    people = make_people(newsletter, 3, prefix="ex")
    everyone, blocked = make_segment("All three", people), make_segment("Do not mail", people[:2])
    campaign = new_campaign(marketer, newsletter, everyone, version, excluded_segments=[blocked])
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    client.force_login(marketer)
    client.post(f"/admin/marketing/segment/{blocked.pk}/builder/remove-member/", {"contact": people[0].pk})
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    assert any("Do not mail" in reason for reason in returned_to_draft(campaign))


def test_editing_the_rules_of_a_dynamic_segment_through_the_api_returns_the_campaign_to_draft(marketer, approver, newsletter, version):
    make_people(newsletter, 4, prefix="dyn")
    segment = create_segment(name="Just one", actor=marketer, rules=group("and", rule("email", "equals", "dyn0@example.com")))
    refresh_segment(segment=segment)
    campaign = new_campaign(marketer, newsletter, segment, version)
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    # when the rules are widened to everyone through the API (and the segment refreshed)
    response = api(marketer).patch(
        f"/api/v1/segments/{segment.pk}/", {"rules": group("and", rule("email", "contains", "example"))}, format="json"
    )
    assert response.status_code == 200, response.content
    api(marketer).post(f"/api/v1/segments/{segment.pk}/refresh/")
    # then the scheduled campaign is a draft; the tick starts nothing
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    assert any("Just one" in reason and "rules" in reason for reason in returned_to_draft(campaign))
    run_campaigns()
    assert not CampaignRecipient.objects.filter(campaign=campaign).exists()


def test_renaming_a_segment_or_its_nightly_refresh_keeps_the_approval(marketer, one_person_campaign):
    campaign, segment, _first, _others = one_person_campaign
    update_segment(segment=segment, actor=marketer, name="One VIP (renamed)", description="same people")
    refresh_segment(segment=segment)
    campaign.refresh_from_db()
    assert campaign.state == State.APPROVED and returned_to_draft(campaign) == []


def test_deleting_an_excluded_segment_through_the_api_returns_the_campaign_to_draft(marketer, approver, newsletter, version):
    people = make_people(newsletter, 3, prefix="del")
    everyone, blocked = make_segment("Everybody", people), make_segment("Blocked", people[:2])
    campaign = new_campaign(marketer, newsletter, everyone, version, excluded_segments=[blocked])
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    response = api(marketer).delete(f"/api/v1/segments/{blocked.pk}/")
    assert response.status_code == 204
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    assert any("Blocked" in reason for reason in returned_to_draft(campaign))


def test_a_segment_of_a_campaign_whose_audience_is_not_fixed_yet_cannot_be_changed(marketer, one_person_campaign):
    campaign, segment, _first, others = one_person_campaign
    schedule_campaign(actor=marketer, campaign=campaign)
    start_campaign(actor=None, campaign=campaign)
    pause_campaign(actor=marketer, campaign=campaign)  # paused before its fan-out read the audience

    with pytest.raises(CampaignStateError, match="Spring sale"):
        add_static_members(segment=segment, identifiers=[others[0].email], actor=marketer)
    assert segment.members.count() == 1


@pytest.mark.parametrize(
    "values",
    [{"complaint_rate_limit": "50.00"}, {"bounce_rate_limit": "90.00"}, {"from_address": "Other <other@example.com>"}],
    ids=["complaint-limit", "bounce-limit", "sender"],
)
def test_loosening_guardrails_or_changing_the_sender_through_the_api_needs_a_new_approval(marketer, one_person_campaign, values):
    campaign, *_ = one_person_campaign
    schedule_campaign(actor=marketer, campaign=campaign)
    response = api(marketer).patch(f"/api/v1/campaigns/{campaign.pk}/", values, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == State.DRAFT
    assert returned_to_draft(campaign), "the reason is audited"


def test_changing_the_sender_or_a_guardrail_in_the_wizard_needs_a_new_approval(client, marketer, one_person_campaign, newsletter, version):
    campaign, segment, *_ = one_person_campaign
    client.force_login(marketer)
    form = wizard_form(newsletter, segment, version, name=campaign.name, complaint_rate_limit="99.00")
    response = client.post(f"/admin/marketing/campaign/{campaign.pk}/edit/", form)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    assert any("complaint" in reason for reason in returned_to_draft(campaign))


def test_dragging_an_approved_campaign_in_the_calendar_needs_a_new_approval(client, marketer, one_person_campaign):
    campaign, *_ = one_person_campaign
    schedule_campaign(actor=marketer, campaign=campaign)
    later = timezone.now() + timedelta(days=3)
    client.force_login(marketer)
    response = client.post(f"/admin/marketing/campaign/{campaign.pk}/reschedule/", {"send_at": later.isoformat()})
    assert response.status_code == 200 and response.json()["state"] == State.DRAFT
    campaign.refresh_from_db()
    assert campaign.send_at == later and campaign.state == State.DRAFT and campaign.approved_at is None
    assert any("calendar" in reason for reason in returned_to_draft(campaign))
    # and the tick never starts it
    run_campaigns()
    assert not CampaignRecipient.objects.filter(campaign=campaign).exists()


def test_a_bad_segment_edit_changes_neither_the_segment_nor_the_campaign(marketer, one_person_campaign):
    campaign, *_ = one_person_campaign
    dynamic = create_segment(name="Rules", actor=marketer, rules=group("and", rule("email", "is_set")))
    campaign.excluded_segments.add(dynamic)
    with pytest.raises(InvalidInput):
        update_segment(segment=dynamic, actor=marketer, rules=group("and", rule("nope", "equals", "1")))
    campaign.refresh_from_db()
    assert campaign.state == State.APPROVED and returned_to_draft(campaign) == []


def test_deleting_an_excluded_segment_in_the_admin_returns_the_campaign_to_draft(
    client, admin_user, marketer, approver, newsletter, version
):

    people = make_people(newsletter, 3, prefix="adm")
    everyone = make_segment("All of them", people)
    # (the admin refuses to delete a segment that has members: their rows are read-only there)
    blocked = create_segment(name="Never", actor=marketer, rules=group("and", rule("email", "contains", "adm0")))
    campaign = new_campaign(marketer, newsletter, everyone, version, excluded_segments=[blocked])
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    client.force_login(admin_user)
    response = client.post(f"/admin/marketing/segment/{blocked.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT and any("Never" in reason for reason in returned_to_draft(campaign))
