"""Issue 16, items 3 and 4 across the seams (review): the four-eyes rule and "approved means
approved" tried from the paths the first fixes did not cover. Each test is named after the
attack and drives the real path (API as the role's user, console HTTP, the actions)."""

import re

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from marketing.automations.actions import activate_automation, update_automation
from marketing.automations.approval import AutomationFourEyesViolation, approve_automation
from marketing.automations.runner import run_due_steps
from marketing.automations.triggers import scan_triggers
from marketing.campaigns.actions import (
    approve_campaign,
    create_campaign,
    reopen_campaign,
    schedule_campaign,
    submit_campaign,
    update_campaign,
)
from marketing.models import Automation, Campaign
from messaging.contacts import create_contact
from messaging.content.versions import activate_template_version, save_template_version
from messaging.models import AuditEntry, Template
from tests.conftest import make_user
from tests.marketing.conftest import make_people, make_segment
from tests.marketing.test_automations_four_eyes import MONDAY_NINE, all_customers, weekly_to  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
State = Campaign.State


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def marketer_approver(db):
    """One person holding both the Marketer and the Approver roles."""
    user = make_user("both", "Marketer")
    user.groups.add(Group.objects.get(name="Approver"))
    return user


def test_marketer_approver_cannot_widen_a_colleagues_campaign_then_approve_it_himself(marketer_approver, approved, newsletter):
    # given a colleague's approved campaign to six people, and 40 more people nobody approved
    campaign = approved
    everyone = make_segment("All customers", make_people(newsletter, 40, prefix="all"))
    client = api(marketer_approver)
    # when a user with both roles widens its audience (back to draft), submits and approves it
    assert client.patch(f"/api/v1/campaigns/{campaign.pk}/", {"segments": [everyone.pk]}, format="json").status_code == 200
    assert client.post(f"/api/v1/campaigns/{campaign.pk}/submit/").status_code == 200
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/approve/")
    # then the approval is refused: nobody but him has seen the widened audience
    assert response.status_code == 409 and response.json()["code"] == "four_eyes", response.content
    campaign.refresh_from_db()
    assert campaign.state == State.PENDING_APPROVAL and campaign.approved_by is None


def test_marketer_approver_cannot_submit_a_colleagues_campaign_and_reject_it_either(marketer_approver, draft):
    client = api(marketer_approver)
    assert client.post(f"/api/v1/campaigns/{draft.pk}/submit/").status_code == 200
    response = client.post(f"/api/v1/campaigns/{draft.pk}/reject/", {"reason": "mine"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "four_eyes"
    draft.refresh_from_db()
    assert draft.state == State.PENDING_APPROVAL


def test_a_colleague_who_did_not_touch_it_can_still_approve(marketer_approver, approver, draft):
    api(marketer_approver).post(f"/api/v1/campaigns/{draft.pk}/submit/")
    assert api(approver).post(f"/api/v1/campaigns/{draft.pk}/approve/").status_code == 200
    draft.refresh_from_db()
    assert draft.state == State.APPROVED and draft.approved_by == approver


def topic_form(topic, **changes) -> dict:
    form = {"key": topic.key, "name": topic.name, "description": topic.description, "kind": topic.kind, "position": topic.position}
    if topic.time_sensitive:
        form["time_sensitive"] = "on"
    form.update(changes)
    return {name: value for name, value in form.items() if value is not False}


@pytest.mark.parametrize("state", [State.PENDING_APPROVAL, State.APPROVED, State.SCHEDULED])
def test_marketer_cannot_drop_the_consent_check_of_an_approved_campaign_by_making_its_topic_transactional(
    client, marketer, approver, newsletter, version, state
):

    # given a campaign approved for the 2 subscribers of a segment of 8 (6 never consented)
    subscribed = make_people(newsletter, 2, prefix="yes")
    segment = make_segment("Mixed", [*subscribed, *make_people(newsletter, 6, prefix="no", subscribed=False)])
    campaign = create_campaign(actor=marketer, name="Promo", topic=newsletter, template_version=version, segments=[segment])
    submit_campaign(actor=marketer, campaign=campaign)
    if state != State.PENDING_APPROVAL:
        approve_campaign(actor=approver, campaign=campaign)
    if state == State.SCHEDULED:
        schedule_campaign(actor=marketer, campaign=campaign)
    # when the marketer makes the campaign's topic "transactional" in the console (no consent needed)
    client.force_login(marketer)
    response = client.post(f"/admin/messaging/topic/{newsletter.pk}/change/", topic_form(newsletter, kind="transactional"))
    assert response.status_code == 302, response.content[:2000]
    newsletter.refresh_from_db()
    assert newsletter.kind == "transactional"
    # then the campaign, which would now reach all 8, needs a new approval
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT and campaign.approved_by is None
    entry = AuditEntry.objects.filter(target_id=str(campaign.pk), verb="returned to draft").latest("pk")
    assert "Newsletter" in entry.changes["reason"] and entry.actor == marketer


def test_marketer_cannot_lift_the_frequency_cap_of_an_approved_campaign_by_making_its_topic_time_sensitive(
    client, marketer, approved, newsletter
):
    client.force_login(marketer)
    response = client.post(f"/admin/messaging/topic/{newsletter.pk}/change/", topic_form(newsletter, time_sensitive="on"))
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.state == State.DRAFT


def test_renaming_the_topic_of_an_approved_campaign_keeps_it_approved(client, marketer, approved, newsletter):
    client.force_login(marketer)
    assert client.post(f"/admin/messaging/topic/{newsletter.pk}/change/", topic_form(newsletter, name="Our letter")).status_code == 302
    approved.refresh_from_db()
    assert approved.state == State.APPROVED


# --- the approver approves what they saw, not what it became after they opened the page ------
SEEN = re.compile(r'name="seen" value="([^"]+)"')


def test_approver_cannot_be_made_to_approve_a_campaign_widened_and_resubmitted_after_they_opened_the_queue(
    client, marketer, approver, pending, newsletter
):
    # given the approver has the approval queue open, showing the six-person campaign
    client.force_login(approver)
    queue = client.get("/admin/marketing/campaign/approvals/").content.decode()
    seen = SEEN.findall(queue)
    assert len(seen) == 1
    # when, meanwhile, its author widens the audience to 40 people and submits it again

    everyone = make_segment("All customers", make_people(newsletter, 40, prefix="all"))
    update_campaign(actor=marketer, campaign=pending, segments=[everyone])
    submit_campaign(actor=marketer, campaign=pending)
    # and the approver presses Approve on the page they had open
    client.post(f"/admin/marketing/campaign/{pending.pk}/do/approve/", {"seen": seen[0], "next": "/admin/marketing/campaign/approvals/"})
    # then the widened campaign is not approved: it waits for a review of what it is now
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL and pending.approved_by is None
    # and approving from a freshly opened page works
    fresh = SEEN.findall(client.get(f"/admin/marketing/campaign/{pending.pk}/overview/").content.decode())
    client.post(f"/admin/marketing/campaign/{pending.pk}/do/approve/", {"seen": fresh[0]})
    pending.refresh_from_db()
    assert pending.state == State.APPROVED and pending.approved_by == approver


def test_api_approval_naming_an_older_submission_is_refused(marketer, approver, pending):
    seen = api(approver).get(f"/api/v1/campaigns/{pending.pk}/").json()["submitted_at"]
    reopen_campaign(actor=marketer, campaign=pending)
    submit_campaign(actor=marketer, campaign=pending)
    response = api(approver).post(f"/api/v1/campaigns/{pending.pk}/approve/", {"submitted_at": seen}, format="json")
    assert response.status_code == 409
    pending.refresh_from_db()
    assert pending.state == State.PENDING_APPROVAL
    current = api(approver).get(f"/api/v1/campaigns/{pending.pk}/").json()["submitted_at"]
    assert api(approver).post(f"/api/v1/campaigns/{pending.pk}/approve/", {"submitted_at": current}, format="json").status_code == 200


def test_approver_cannot_be_made_to_approve_an_automation_whose_audience_changed_after_they_opened_the_queue(
    client,
    clock,
    all_customers,  # noqa: F811  (the fixture imported above)
    marketer,
    approver,
):

    flow = weekly_to(make_segment("Two friends", make_people_for_automation(2)), marketer)
    activate_automation(actor=marketer, automation=flow)
    client.force_login(approver)
    seen = SEEN.findall(client.get("/admin/marketing/campaign/approvals/").content.decode())
    assert len(seen) == 1
    # a minute later the author swaps the audience for every customer (still waiting for approval)
    clock.shift(60)
    update_automation(actor=marketer, automation=flow, audience=all_customers)
    client.post(f"/admin/marketing/automation/{flow.pk}/flow/review/approve/", {"seen": seen[0], "next": "approvals"})
    flow.refresh_from_db()
    assert flow.state == Automation.State.PENDING_APPROVAL and flow.approved_at is None
    fresh = SEEN.findall(client.get(f"/admin/marketing/automation/{flow.pk}/flow/").content.decode())
    client.post(f"/admin/marketing/automation/{flow.pk}/flow/review/approve/", {"seen": fresh[0]})
    flow.refresh_from_db()
    assert flow.state == Automation.State.ACTIVE and flow.approved_by == approver


def make_people_for_automation(n):
    return [create_contact(actor=None, email=f"friend{i}@example.com") for i in range(n)]


def test_marketer_approver_cannot_approve_the_automation_his_own_new_template_content_sent_back_for_approval(
    all_customers,  # noqa: F811  (the fixture imported above)
    catalog,
    clock,
    marketer,
    approver,
    marketer_approver,
):

    # given a colleague's weekly blast to every customer, approved by an approver
    flow = weekly_to(all_customers, marketer)
    approve_automation(actor=approver, automation=activate_automation(actor=marketer, automation=flow))
    # when a user with both roles puts new content live in the template it sends
    welcome = Template.objects.get(key="welcome", locale="en")
    version = save_template_version(
        actor=marketer_approver,
        template=welcome,
        subject="Flash sale",
        body_format="html",
        body='<p>Buy now</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        text_body="Buy now {{ unsubscribe_url }}",
    )
    activate_template_version(actor=marketer_approver, version=version)
    clock.move_to(MONDAY_NINE)
    scan_triggers()
    run_due_steps(owner="test")
    flow.refresh_from_db()
    assert flow.state == Automation.State.PENDING_APPROVAL
    # then he cannot approve the content he wrote himself
    with pytest.raises(AutomationFourEyesViolation):
        approve_automation(actor=marketer_approver, automation=flow)
    flow.refresh_from_db()
    assert flow.state == Automation.State.PENDING_APPROVAL and flow.approved_at is None
    # while another approver can
    approve_automation(actor=approver, automation=flow)
    flow.refresh_from_db()
    assert flow.state == Automation.State.ACTIVE
