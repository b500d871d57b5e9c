"""Work handed to the cluster or to the automations waits for the commit: when the
transaction that asked for it rolls back, nothing is queued and nothing is sent."""

from contextlib import suppress

import pytest
from django.db import transaction

from marketing.automations.actions import create_automation
from marketing.campaigns.actions import start_campaign
from marketing.events import track_event
from marketing.models import AutomationRun, Campaign, Event
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery import work
from messaging.models import OutboxMessage
from tests.marketing.conftest import go_live, inbox

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


@pytest.fixture
def queued(settings, monkeypatch) -> list:
    """The tasks handed to the cluster (django-q's queue), recorded instead of enqueued."""
    settings.MAILROOM_KICK_CLUSTER = True
    calls = []
    monkeypatch.setattr(work, "enqueue_task", lambda func, **kwargs: calls.append((func, kwargs)))
    return calls


def test_a_campaign_started_in_a_transaction_that_rolls_back_queues_no_send(scheduled, queued, committed):
    messages = set(OutboxMessage.objects.values_list("pk", flat=True))  # the notices of its approval
    # when the campaign is started and the transaction then fails
    with committed() as callbacks, suppress(Boom), transaction.atomic():
        start_campaign(actor=None, campaign=scheduled)
        raise Boom
    # then no fan-out task was queued and no message was added
    assert callbacks == [] and queued == []
    assert Campaign.objects.get(pk=scheduled.pk).state == Campaign.State.SCHEDULED
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == messages
    # while the same start, committed, queues the fan-out
    with committed():
        start_campaign(actor=None, campaign=scheduled)
    assert queued == [("marketing.tasks.fan_out_campaign", {"campaign_id": scheduled.pk})]


def test_an_event_rolled_back_starts_no_automation_and_sends_nothing(catalog, queued, clock, tick, committed):
    # given a live automation that welcomes each sign-up
    flow = go_live(
        create_automation(
            actor=None,
            name="Welcome",
            trigger_type="event",
            trigger={"events": ["signed_up"]},
            steps=[{"kind": "send", "config": {"template": "welcome", "channel": "email"}}],
        )
    )
    ada = create_contact(actor=None, email="ada@example.com", first_name="Ada")
    subscribe(actor=None, contact=ada, topic=catalog["product-news"])
    # when the sign-up is tracked in a transaction that then fails
    with committed() as callbacks, suppress(Boom), transaction.atomic():
        track_event(contact=ada, name="signed_up")
        raise Boom
    tick()
    # then nothing was handed to the automations or the cluster: no event, no run, no message
    assert callbacks == [] and queued == []
    assert not Event.objects.exists() and not AutomationRun.objects.exists()
    assert not OutboxMessage.objects.exists() and inbox() == []
    # while the same sign-up, committed, sends the welcome
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    assert flow.runs.count() == 1 and [m.to_address for m in inbox()] == ["ada@example.com"]
