"""Issue 16, items 3 and 4 across the seams (review): the four-eyes rule and "approved means
approved" tried from the paths the first fixes did not cover. Each test is named after the
attack and drives the real path (API as the role's user, console HTTP, the actions)."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from marketing.models import Campaign
from tests.conftest import make_user
from tests.marketing.conftest import make_people, make_segment

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
