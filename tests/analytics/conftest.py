"""Analytics fixtures: a small world of messages, events and orders over a few days."""

from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketing.events import record_order
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.models import DeliveryEvent, OutboxMessage, Provider


def at(day, hour: int = 12, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


class World:
    """Builds raw rows the way the app does (actions), then moves them in time."""

    def __init__(self):
        self.today = timezone.localdate()
        self.providers = {
            "ses": Provider.objects.create(name="ses", channel="email", kind=Provider.Kind.SANDBOX),
            "twilio": Provider.objects.create(name="twilio", channel="sms", kind=Provider.Kind.SANDBOX),
        }
        self.count = 0

    def message(self, *, channel="email", day=None, status=OutboxMessage.Status.SENT, provider="ses", topic=None, contact=None, **metadata):
        self.count += 1
        to = f"p{self.count}@example.com" if channel == "email" else f"+3361234{self.count:04d}"
        message = enqueue_message(
            channel=channel,
            to=to,
            contact=contact,
            text="hi",
            topic=topic,
            metadata={k: v for k, v in metadata.items() if v is not None} or None,
        )
        created = at(day or self.today, 9)
        OutboxMessage.objects.filter(pk=message.pk).update(
            status=status, provider=self.providers.get(provider), created_at=created, sent_at=created if status == "sent" else None
        )
        message.refresh_from_db()
        return message

    def event(self, message, kind, *, when, automated=False):
        return DeliveryEvent.objects.create(message=message, kind=kind, occurred_at=when, is_automated=automated)

    def contact(self, email):
        return create_contact(actor=None, email=email)

    def order(self, contact, amount, *, when, ref=None, status="paid"):
        self.count += 1
        order, _previous = record_order(
            contact=contact, external_id=ref or f"o-{self.count}", amount=Decimal(amount), status=status, placed_at=when
        )
        return order


@pytest.fixture
def world(db, settings) -> World:
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Paix, 75002 Paris"
    return World()


@pytest.fixture
def days_ago():
    return lambda n: timezone.localdate() - timedelta(days=n)


from tests.api.conftest import _fresh_throttles, api, api_key, as_user, key_client  # noqa: E402, F401  (API clients)
