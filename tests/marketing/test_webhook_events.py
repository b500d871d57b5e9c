import json

import pytest

from marketing.campaigns.actions import submit_campaign
from messaging.models import WebhookDelivery
from messaging.webhooks.endpoints import create_endpoint


@pytest.fixture(autouse=True)
def _loopback(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


def test_campaign_transitions_are_announced(draft, marketer, django_capture_on_commit_callbacks):
    create_endpoint(actor=None, name="CRM", url="http://127.0.0.1:9/", event_types=["campaign.state_changed"])
    with django_capture_on_commit_callbacks(execute=True):
        submit_campaign(actor=marketer, campaign=draft)
    body = json.loads(WebhookDelivery.objects.get().body)
    assert body["type"] == "campaign.state_changed"
    assert body["data"] == {"campaign_id": draft.pk, "name": draft.name, "before": "draft", "after": "pending_approval"}
