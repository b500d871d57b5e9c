"""Live state: a campaign is marked sent right after the batch holding its last messages is
recorded (no minute tick), through the one rule `complete_campaign`; a paused or cancelled
campaign is left alone; a batch without campaign messages never queries campaigns."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketing.campaigns import actions
from marketing.campaigns.actions import cancel_campaign, pause_campaign
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.queries import campaign_recipients, campaign_report
from marketing.models import Campaign
from messaging.delivery import sending
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import claim_batch, deliver, record_outcomes, send_due_messages, usable_providers
from messaging.models import OutboxMessage
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
State = Campaign.State
Status = OutboxMessage.Status


def test_a_campaign_reads_sent_right_after_its_last_batch_without_the_minute_tick(sending, people):
    # given a campaign fanned out to its six recipients
    fan_out(campaign=sending)
    sending.refresh_from_db()
    assert sending.state == State.SENDING
    # when the drain sends and records its messages (and no minute tick runs)
    assert send_due_messages(limit=4) >= 6  # two batches (then the author's "Sent" notice)
    # then the campaign is sent, and its report and recipients equal the outbox
    sending.refresh_from_db()
    assert sending.state == State.SENT and sending.finished_at is not None
    outbox = OutboxMessage.objects.filter(campaign_recipient__campaign=sending)
    assert campaign_report(sending)["sent"] == outbox.filter(status=Status.SENT).count() == 6
    assert {r.delivery_status for r in campaign_recipients(sending)} == {Status.SENT}


def test_a_campaign_is_not_marked_sent_while_a_batch_of_it_is_left(sending, people):
    fan_out(campaign=sending)
    owner = "worker-a"
    first = claim_batch(channel="email", limit=3, owner=owner)
    record_outcomes(deliver(first, usable_providers("email")))
    sending.refresh_from_db()
    assert sending.state == State.SENDING  # three are still queued
    assert send_due_messages() >= 3
    sending.refresh_from_db()
    assert sending.state == State.SENT


@pytest.mark.parametrize("stop", [pause_campaign, cancel_campaign], ids=["paused", "cancelled"])
def test_a_paused_or_cancelled_campaign_is_not_marked_sent_by_its_last_batch(sending, people, marketer, stop):
    # given every message of the campaign claimed by a worker
    fan_out(campaign=sending)
    batch = claim_batch(channel="email", limit=100, owner="worker-a")
    assert len([m for m in batch if m.metadata.get("campaign") == sending.pk]) == 6
    # when the campaign is stopped while the batch is in flight, then the batch is recorded
    stop(actor=marketer, campaign=sending)
    record_outcomes(deliver(batch, usable_providers("email")))
    # then it stays as the person left it
    sending.refresh_from_db()
    assert sending.state == (State.PAUSED if stop is pause_campaign else State.CANCELLED)
    assert OutboxMessage.objects.filter(campaign_recipient__campaign=sending, status=Status.SENT).count() == 6


def test_the_hook_marks_sent_through_complete_campaign_once(sending, people, monkeypatch):
    calls = []
    real = actions.complete_campaign
    monkeypatch.setattr(actions, "complete_campaign", lambda **kw: calls.append(kw["campaign"].pk) or real(**kw))
    fan_out(campaign=sending)
    calls.clear()
    send_due_messages(limit=2)  # three batches, one completion
    assert calls == [sending.pk]


def test_a_batch_without_campaign_messages_does_not_query_campaigns(django_assert_num_queries, monkeypatch):
    enqueue_message(channel="email", to="first@example.com", subject="Your receipt", text="Thanks")
    assert send_due_messages() == 1  # the first send creates the sandbox provider
    enqueue_message(channel="email", to="receipt@example.com", subject="Your receipt", text="Thanks")
    announced = []
    sending.campaign_messages_recorded.connect(lambda **kw: announced.append(kw), weak=False, dispatch_uid="test_live_state")
    try:
        with CaptureQueriesContext(connection) as queries:
            assert send_due_messages() == 1
    finally:
        sending.campaign_messages_recorded.disconnect(dispatch_uid="test_live_state")
    assert announced == []
    assert not [q["sql"] for q in queries if Campaign._meta.db_table in q["sql"] or "campaignrecipient" in q["sql"]]
    enqueue_message(channel="email", to="receipt2@example.com", subject="Your receipt", text="Thanks")
    with django_assert_num_queries(len(queries)):
        assert send_due_messages() == 1


def test_a_batch_with_campaign_messages_checks_its_campaigns_in_one_query(sending, people):
    fan_out(campaign=sending)
    batch = claim_batch(channel="email", limit=3, owner="worker-a")
    outcomes = deliver(batch, usable_providers("email"))
    with CaptureQueriesContext(connection) as queries:
        record_outcomes(outcomes)
    assert len([q for q in queries if Campaign._meta.db_table in q["sql"]]) == 1


def test_the_campaign_page_shows_send_progress_and_polls_until_sent(client, marketer, sending, people):
    # given a campaign with two of its six messages sent
    fan_out(campaign=sending)
    record_outcomes(deliver(claim_batch(channel="email", limit=3, owner="w"), usable_providers("email")))
    sent = OutboxMessage.objects.filter(campaign_recipient__campaign=sending, status=Status.SENT).count()
    client.force_login(marketer)
    # when the marketer opens the overview and the report / then both show sent/total and poll
    progress_url = f"/admin/marketing/campaign/{sending.pk}/progress/"
    for page in ("overview", "report"):
        html = client.get(f"/admin/marketing/campaign/{sending.pk}/{page}/").content.decode()
        assert 'data-testid="send-progress-bar"' in html and f'value="{sent}"' in html and 'max="6"' in html
        assert f'hx-get="{progress_url}"' in html and 'hx-trigger="every 3s"' in html
    polled = client.get(progress_url, headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "HX-Refresh" not in polled
    assert f"{sent} of 6 sent" in polled.content.decode()
    # when the rest is sent / then the next poll reloads the page once, which no longer polls
    send_due_messages()
    polled = client.get(progress_url, headers={"HX-Request": "true"})
    assert polled["HX-Refresh"] == "true"
    html = client.get(f"/admin/marketing/campaign/{sending.pk}/overview/").content.decode()
    assert 'data-state="sent"' in html and progress_url not in html


def test_the_progress_partial_needs_the_campaign_permission(client, sending):
    outsider = make_user("outsider")
    client.force_login(outsider)
    assert client.get(f"/admin/marketing/campaign/{sending.pk}/progress/").status_code in (302, 403)
