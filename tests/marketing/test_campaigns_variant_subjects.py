"""A/B variant subjects get the same checks as a template version's subject: a broken or
forbidden tag is refused when the variant is saved (wizard, API, action) with a field error,
and a bad subject already stored never turns the approval queue or the dry run into a 500."""

import pytest
from rest_framework.test import APIClient

from marketing.campaigns.actions import approve_campaign, schedule_campaign, start_campaign, submit_campaign, update_campaign
from marketing.models import Campaign, CampaignVariant
from messaging.errors import InvalidInput
from tests.marketing.conftest import wizard_form

pytestmark = pytest.mark.django_db

BAD_SUBJECTS = ["{% if %}", "Hi {% if contact.first_name %}", "{% load static %}", "{{ settings.SECRET_KEY }}", "{{ name|nope }}"]


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("subject", BAD_SUBJECTS)
def test_a_variant_subject_with_a_broken_tag_is_refused_in_the_api_with_a_field_error(marketer, newsletter, segment, version, subject):
    body = {
        "name": "A/B",
        "topic": newsletter.key,
        "template_version": version.pk,
        "segments": [segment.pk],
        "ab_test_share": 20,
        "variants": [{"subject": "Fine {{ contact.first_name }}"}, {"subject": subject}],
    }
    response = api(marketer).post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400, response.content
    assert "Variant B" in str(response.json())
    assert not Campaign.objects.exists() and not CampaignVariant.objects.exists()


def test_a_variant_subject_with_an_if_tag_is_refused_in_the_wizard_next_to_the_field(client, marketer, newsletter, segment, version):
    client.force_login(marketer)
    form = wizard_form(newsletter, segment, version, ab_test_share=20, variant_A_subject="Hello", variant_B_subject="{% if %}")
    response = client.post("/admin/marketing/campaign/new/", form)
    assert response.status_code == 200
    assert response.context["form"].errors["variant_B_subject"]
    assert not Campaign.objects.exists()


def test_editing_a_variant_subject_to_a_broken_tag_changes_nothing(marketer, draft):
    update_campaign(actor=marketer, campaign=draft, variants=[{"subject": "One"}, {"subject": "Two"}])
    with pytest.raises(InvalidInput) as refused:
        update_campaign(actor=marketer, campaign=draft, variants=[{"subject": "One"}, {"subject": "{% if %}"}])
    assert "variant_B_subject" in refused.value.fields
    assert list(draft.variants.values_list("subject", flat=True)) == ["One", "Two"]


def test_a_stored_bad_variant_subject_never_breaks_the_approval_queue_or_the_dry_run(client, marketer, approver, draft):
    # given a campaign submitted with good variants, whose B subject was stored bad before the check existed
    update_campaign(actor=marketer, campaign=draft, ab_test_share=50, variants=[{"subject": "One"}, {"subject": "Two"}])
    submit_campaign(actor=marketer, campaign=draft)
    CampaignVariant.objects.filter(campaign=draft, label="B").update(subject="{% if %}")  # a legacy row
    # then the approval queue, the overview, the dry run and the API answer, naming the problem
    client.force_login(approver)
    queue = client.get("/admin/marketing/campaign/approvals/")
    assert queue.status_code == 200
    dry = client.get(f"/admin/marketing/campaign/{draft.pk}/dry-run/")
    assert dry.status_code == 200 and "Variant B" in dry.content.decode()
    assert client.get(f"/admin/marketing/campaign/{draft.pk}/overview/").status_code == 200
    answer = api(approver).get(f"/api/v1/campaigns/{draft.pk}/dry-run/")
    assert answer.status_code == 200 and any("Variant B" in problem for problem in answer.json()["problems"])
    # and it never starts sending: the start is blocked and the campaign returns to draft

    approve_campaign(actor=approver, campaign=draft)
    schedule_campaign(actor=marketer, campaign=draft)
    assert start_campaign(actor=None, campaign=draft).state == Campaign.State.DRAFT
