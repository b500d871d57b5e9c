"""The fan-out on PostgreSQL with real threads: workers side by side, racing runs, and a
pause that lands while a chunk is being written."""

import threading
import time

import pytest
from django.db import connection

from marketing.campaigns import fanout as fanout_module
from marketing.campaigns.actions import approve_campaign, hold_until, pause_campaign, schedule_campaign, start_campaign, submit_campaign
from marketing.campaigns.fanout import fan_out, prepare_recipients
from marketing.models import Campaign, CampaignRecipient, FanoutChunk
from messaging.models import OutboxMessage
from tests.marketing.conftest import make_people, make_segment, new_campaign

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def big_campaign(marketer, approver, newsletter, version, settings):
    settings.MAILROOM_FANOUT_CHUNK = 20
    people = make_people(newsletter, 120, prefix="f")
    campaign = new_campaign(marketer, newsletter, make_segment("Hundred and twenty", people), version)
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    return start_campaign(actor=None, campaign=campaign)


def messages_of(campaign):
    return OutboxMessage.objects.filter(campaign_recipient__campaign=campaign)


def record_threads(monkeypatch) -> set[str]:
    names: set[str] = set()
    original = fanout_module._messages_spec

    def recording(*args, **kwargs):
        names.add(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(fanout_module, "_messages_spec", recording)
    return names


def test_workers_side_by_side_create_each_message_once_under_its_reserved_id(big_campaign, settings, monkeypatch):
    settings.MAILROOM_FANOUT_WORKERS = 3
    threads = record_threads(monkeypatch)
    # when the fan-out runs with three workers
    result = fan_out(campaign=big_campaign)
    # then every recipient has exactly its message, and more than one thread wrote them
    assert result.messages == 120 and len(threads) >= 2
    reserved = dict(CampaignRecipient.objects.filter(campaign=big_campaign).values_list("contact_id", "message_id"))
    assert dict(messages_of(big_campaign).values_list("contact_id", "pk")) == reserved
    assert not FanoutChunk.objects.filter(campaign=big_campaign, done=False).exists()
    big_campaign.refresh_from_db()
    assert big_campaign.fanout == Campaign.Fanout.DONE


def test_two_fan_outs_racing_create_nothing_twice(big_campaign, settings):
    settings.MAILROOM_FANOUT_WORKERS = 2
    prepare_recipients(campaign=big_campaign)
    barrier = threading.Barrier(2)
    results = []

    def run():
        barrier.wait()
        try:
            results.append(fan_out(campaign=big_campaign).messages)
        finally:
            connection.close()

    racers = [threading.Thread(target=run) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    assert sum(results) == 120
    assert messages_of(big_campaign).count() == 120
    assert messages_of(big_campaign).values("contact_id").distinct().count() == 120


def test_a_pause_waits_for_the_chunk_in_flight_and_holds_its_messages_too(big_campaign, settings, monkeypatch):
    settings.MAILROOM_FANOUT_WORKERS = 1
    started = threading.Event()
    original = fanout_module._messages_spec

    def slow(*args, **kwargs):
        started.set()
        time.sleep(0.5)  # the chunk's transaction is open, its messages not yet committed
        return original(*args, **kwargs)

    monkeypatch.setattr(fanout_module, "_messages_spec", slow)

    def run():
        try:
            fan_out(campaign=big_campaign)
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    # when the marketer pauses while the first chunk is being written
    assert started.wait(timeout=30)
    pause_campaign(actor=None, campaign=big_campaign)
    worker.join(timeout=60)
    # then the fan-out stopped after that chunk, and none of its messages escaped the hold
    created = messages_of(big_campaign)
    assert 0 < created.count() < 120
    assert not created.filter(status=OutboxMessage.Status.QUEUED).exclude(next_attempt_at=hold_until()).exists()
    assert FanoutChunk.objects.filter(campaign=big_campaign, done=False).exists()
