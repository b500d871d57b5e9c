"""Growth's ledgers and marketing's campaign transitions reach webhook endpoints through
messaging's `emit` (the types are registered from each app's wiring)."""

import json

import pytest

from growth.loyalty import adjust_points
from growth.models import LoyaltyAccount
from marketing.events import record_order
from messaging.models import WebhookDelivery
from messaging.webhooks.endpoints import create_endpoint
from messaging.webhooks.events import EVENT_TYPES


@pytest.fixture(autouse=True)
def _loopback(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


def test_higher_apps_registered_their_event_types():
    assert {"campaign.state_changed", "order.attributed", "loyalty.ledger_entry", "gift_card.ledger_entry"} <= EVENT_TYPES.keys()


def test_loyalty_ledger_entries_are_announced(contact, loyalty_program, support, django_capture_on_commit_callbacks):
    create_endpoint(actor=None, name="CRM", url="http://127.0.0.1:9/", event_types=["loyalty.ledger_entry"])
    with django_capture_on_commit_callbacks(execute=True):
        record_order(contact=contact, external_id="A-1", amount="40", status="paid")
    with django_capture_on_commit_callbacks(execute=True):
        adjust_points(account=LoyaltyAccount.objects.get(contact=contact), points=5, reason="Goodwill", actor=support)
    bodies = [json.loads(d.body) for d in WebhookDelivery.objects.order_by("id")]
    assert [(b["type"], b["data"]["points"], b["data"]["balance_after"]) for b in bodies] == [
        ("loyalty.ledger_entry", 40, 40),
        ("loyalty.ledger_entry", 5, 45),
    ]
    assert all(b["data"]["contact_id"] == contact.pk for b in bodies)
