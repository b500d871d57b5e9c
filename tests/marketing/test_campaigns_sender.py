"""A campaign's sender with CR/LF became a second `From:` header on the wire. Every place a
sender is set (wizard, API, action, and `enqueue_message` as the last line of defence)
refuses line breaks and anything that is not one valid address, with a field error."""

import pytest
from rest_framework.test import APIClient

from marketing.campaigns.actions import create_campaign, start_campaign, update_campaign
from marketing.models import Campaign
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput
from messaging.models import OutboxMessage
from tests.marketing.conftest import wizard_form

pytestmark = pytest.mark.django_db

INJECTION = "a@b.com\r\nFrom: victim@x.com"
BAD_SENDERS = [INJECTION, "a@b.com\nBcc: all@x.com", "Shop <a@b.com>\rX: 1", "a@b.com, victim@x.com", "not an address", "Shop <a@b>"]


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.parametrize("sender", BAD_SENDERS)
def test_a_sender_with_a_header_injection_is_refused_by_the_api(marketer, newsletter, segment, version, sender):
    body = {"name": "Spring", "topic": newsletter.key, "template_version": version.pk, "segments": [segment.pk], "from_address": sender}
    response = api(marketer).post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400 and "from_address" in str(response.json())
    assert not Campaign.objects.exists()


def test_a_sender_with_a_header_injection_is_refused_when_editing_through_the_api(marketer, draft):
    response = api(marketer).patch(f"/api/v1/campaigns/{draft.pk}/", {"from_address": INJECTION}, format="json")
    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.from_address == ""


def test_a_sender_with_a_header_injection_is_refused_in_the_wizard_next_to_the_field(client, marketer, newsletter, segment, version):
    client.force_login(marketer)
    response = client.post("/admin/marketing/campaign/new/", wizard_form(newsletter, segment, version, from_address=INJECTION))
    assert response.status_code == 200 and response.context["form"].errors["from_address"]
    assert not Campaign.objects.exists()


def test_a_sender_with_a_header_injection_is_refused_by_the_actions(marketer, newsletter, draft):
    with pytest.raises(InvalidInput) as refused:
        create_campaign(actor=marketer, name="X", topic=newsletter, from_address=INJECTION)
    assert "from_address" in refused.value.fields
    with pytest.raises(InvalidInput):
        update_campaign(actor=marketer, campaign=draft, from_address=INJECTION)


@pytest.mark.parametrize(
    "sender", ["shop@example.com", "Shop <shop@example.com>", '"Shop, Inc." <shop@example.com>', "Café <cafe@example.com>"]
)
def test_a_proper_sender_is_kept(marketer, draft, sender):
    assert update_campaign(actor=marketer, campaign=draft, from_address=sender).from_address == sender


@pytest.mark.parametrize("sender", BAD_SENDERS)
def test_enqueue_refuses_a_sender_with_a_header_injection(sender):
    with pytest.raises(InvalidInput):
        enqueue_message(channel="email", to="someone@example.com", subject="Hi", text="Hello", from_address=sender)
    assert not OutboxMessage.objects.exists()


def test_a_stored_injected_sender_never_starts_sending(marketer, scheduled):
    Campaign.objects.filter(pk=scheduled.pk).update(from_address=INJECTION)  # a row stored before senders were checked
    assert start_campaign(actor=None, campaign=scheduled).state == Campaign.State.DRAFT
    assert not OutboxMessage.objects.filter(from_address=INJECTION).exists()
