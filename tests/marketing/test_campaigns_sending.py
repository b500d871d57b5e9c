"""Fan-out, sending through the sandbox, pause/resume/cancel without duplicates, A/B winner,
guardrail auto-pause, per-contact time zones, throttle and quiet hours, the minute tick and
conversion attribution."""

import importlib
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from django.utils import timezone

from marketing.campaigns import fanout as fanout_module
from marketing.campaigns.actions import (
    approve_campaign,
    cancel_campaign,
    pause_campaign,
    resume_campaign,
    schedule_campaign,
    start_campaign,
    submit_campaign,
    update_campaign,
)
from marketing.campaigns.fanout import create_messages, fan_out, prepare_recipients
from marketing.campaigns.preview import dry_run
from marketing.campaigns.queries import campaign_report, local_start
from marketing.campaigns.tasks import run_campaigns
from marketing.campaigns.tick import pick_winner
from marketing.campaigns.variants import choose_winner, variant_scores
from marketing.events import record_order
from marketing.models import Campaign, CampaignConversion, CampaignRecipient, FanoutChunk
from messaging.consent import suppress_address
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.models import DeliveryEvent, OutboxBody, OutboxMessage, SandboxMessage, Topic
from tests.marketing.conftest import make_people, make_segment, new_campaign

pytestmark = pytest.mark.django_db
State = Campaign.State
Status = OutboxMessage.Status


def campaign_messages(campaign):
    return OutboxMessage.objects.filter(campaign_recipient__campaign=campaign)


def approve_and_start(campaign, marketer, approver, **edits):
    if edits:
        update_campaign(actor=marketer, campaign=campaign, **edits)
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    return start_campaign(actor=None, campaign=campaign)


def started(marketer, approver, newsletter, version, *, n: int, prefix: str):
    """A campaign to `n` new subscribers, started (its fan-out not run yet), and the people."""
    people = make_people(newsletter, n, prefix=prefix)
    campaign = new_campaign(marketer, newsletter, make_segment(f"{n} {prefix}", people), version)
    return approve_and_start(campaign, marketer, approver), people


def event(message, kind, **payload):
    return DeliveryEvent.objects.create(message=message, kind=kind, payload=payload, occurred_at=timezone.now())


# --- fan-out and sending ---------------------------------------------------------------------
def test_fan_out_creates_one_recipient_and_one_message_per_eligible_contact(sending, people):
    result = fan_out(campaign=sending)
    sending.refresh_from_db()
    assert result.messages == 6 and sending.fanout == Campaign.Fanout.DONE and sending.recipient_count == 6
    assert CampaignRecipient.objects.filter(campaign=sending, status="queued", message__isnull=False).count() == 6
    keys = set(campaign_messages(sending).values_list("dedup_key", flat=True))
    assert keys == {f"campaign:{sending.pk}:{p.pk}" for p in people}
    # bodies are rendered by the worker that sends them, not at fan-out
    assert not OutboxBody.objects.filter(message__in=campaign_messages(sending)).exists()


def test_a_campaign_sends_personalised_mail_to_the_sandbox_and_ends_sent(sending, people):
    fan_out(campaign=sending)
    send_due_messages()
    assert campaign_messages(sending).filter(status=Status.SENT).count() == 6
    caught = SandboxMessage.objects.get(to_address="p0@example.com")
    assert caught.subject == "News for P0"
    assert "Hello P0" in caught.body_html and "1 rue de la Poste" in caught.body_html
    assert "List-Unsubscribe" in caught.headers
    # the outbox keeps what was sent, and the tick marks the campaign sent
    message = campaign_messages(sending).get(contact=people[0])
    assert message.status == Status.SENT and message.subject == "News for P0" and "render" not in message.metadata
    run_campaigns()
    sending.refresh_from_db()
    assert sending.state == State.SENT
    assert campaign_report(sending)["sent"] == 6


def test_skipped_contacts_are_recorded_with_their_reason(marketer, approver, newsletter, version):
    ok = make_people(newsletter, 2, prefix="ok")
    no_consent = make_people(newsletter, 1, prefix="nc", subscribed=False)
    blocked = make_people(newsletter, 1, prefix="bl")
    suppress_address(actor=None, address=blocked[0].email, channel="email", reason="manual")
    campaign = new_campaign(marketer, newsletter, make_segment("Mixed", [*ok, *no_consent, *blocked]), version)
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    reasons = dict(CampaignRecipient.objects.filter(campaign=campaign).values_list("contact__email", "skip_reason"))
    assert reasons == {"ok0@example.com": "", "ok1@example.com": "", "nc0@example.com": "consent", "bl0@example.com": "suppressed"}
    assert campaign_messages(campaign).count() == 2


def test_running_the_fan_out_twice_creates_nothing_twice(sending):
    fan_out(campaign=sending)
    # a crash-and-retry: the fan-out is run again from its first chunk
    Campaign.objects.filter(pk=sending.pk).update(fanout=Campaign.Fanout.RUNNING)
    FanoutChunk.objects.filter(campaign=sending).update(done=False)
    again = fan_out(campaign=sending)
    assert again.messages == 0
    assert campaign_messages(sending).count() == 6
    assert CampaignRecipient.objects.filter(campaign=sending, message__isnull=False).count() == 6


def test_each_recipient_is_written_once_with_the_id_its_message_gets(marketer, approver, newsletter, version, settings):
    settings.MAILROOM_FANOUT_CHUNK = 5
    campaign, _people = started(marketer, approver, newsletter, version, n=12, prefix="r")
    # given the recipients prepared: each eligible one already holds its future message's id
    prepare_recipients(campaign=campaign)
    reserved = dict(CampaignRecipient.objects.filter(campaign=campaign).values_list("contact_id", "message_id"))
    assert None not in reserved.values() and len(set(reserved.values())) == 12
    assert not OutboxMessage.objects.filter(pk__in=reserved.values()).exists()
    # when another message is queued meanwhile / then it takes an id nobody reserved
    other = enqueue_message(channel="email", to="someone@example.com", subject="Receipt", text="Thanks")
    assert other.pk not in reserved.values()
    create_messages(campaign=campaign)
    # then every message exists under the reserved id, for the right contact
    created = dict(campaign_messages(campaign).values_list("contact_id", "pk"))
    assert created == reserved
    assert OutboxMessage.objects.get(pk=other.pk).subject == "Receipt"


def test_a_crash_mid_fan_out_keeps_the_chunks_done_and_the_rerun_finishes_the_rest(
    marketer, approver, newsletter, version, settings, monkeypatch
):
    settings.MAILROOM_FANOUT_CHUNK = 10
    campaign, people = started(marketer, approver, newsletter, version, n=25, prefix="k")
    prepare_recipients(campaign=campaign)
    original = fanout_module._messages_spec
    calls = {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return original(*args, **kwargs)

    # given a worker that dies in its second chunk
    monkeypatch.setattr(fanout_module, "_messages_spec", crashing)
    with pytest.raises(RuntimeError):
        create_messages(campaign=campaign)
    monkeypatch.undo()
    # then the first chunk is kept and marked done, the second left nothing behind
    assert campaign_messages(campaign).count() == 10
    assert list(FanoutChunk.objects.filter(campaign=campaign).order_by("pk").values_list("done", flat=True)) == [True, False, False]
    # when the fan-out runs again / then it finishes, each contact once
    result = fan_out(campaign=campaign)
    assert result.messages == 15
    assert sorted(campaign_messages(campaign).values_list("contact_id", flat=True)) == sorted(p.pk for p in people)
    campaign.refresh_from_db()
    assert campaign.fanout == Campaign.Fanout.DONE


def test_recipients_the_old_fan_out_left_pending_are_sent_after_the_upgrade(marketer, approver, newsletter, version, settings):
    from django.apps import apps
    from django.db import connection

    upgrade = importlib.import_module("marketing.migrations.0006_pending_recipients_to_chunks")
    settings.MAILROOM_FANOUT_CHUNK = 10
    campaign, people = started(marketer, approver, newsletter, version, n=25, prefix="u")
    prepare_recipients(campaign=campaign)
    FanoutChunk.objects.filter(campaign=campaign).exclude(pk=FanoutChunk.objects.filter(campaign=campaign).order_by("pk")[0].pk).delete()
    create_messages(campaign=campaign)
    # given the old code's state mid fan-out: 10 messages created, 15 recipients "pending", no id, no chunk
    left = CampaignRecipient.objects.filter(campaign=campaign).exclude(pk__in=campaign_messages(campaign).values("campaign_recipient"))
    left.update(status="pending", message=None)
    FanoutChunk.objects.filter(campaign=campaign).delete()
    assert campaign_messages(campaign).count() == 10 and CampaignRecipient.objects.filter(status="pending").count() == 15
    # when the upgrade runs, and a message is queued before the next tick
    upgrade.queue_pending_recipients(apps, SimpleNamespace(connection=connection))
    other = enqueue_message(channel="email", to="someone@example.com", subject="Receipt", text="Thanks")
    result = fan_out(campaign=campaign)
    # then the 15 get their messages, every contact exactly once, and the other message is untouched
    assert result.messages == 15
    assert sorted(campaign_messages(campaign).values_list("contact_id", flat=True)) == sorted(p.pk for p in people)
    assert OutboxMessage.objects.get(pk=other.pk).subject == "Receipt"
    campaign.refresh_from_db()
    assert campaign.fanout == Campaign.Fanout.DONE


# --- pause / resume / cancel ---------------------------------------------------------------------
def test_pause_holds_queued_messages_and_resume_sends_each_exactly_once(marketer, approver, newsletter, version):
    people = make_people(newsletter, 30, prefix="x")
    campaign = new_campaign(marketer, newsletter, make_segment("Thirty", people), version)
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    # given ten sent, then a pause
    send_due_messages(limit=12, time_budget=0.001)
    sent_before = campaign_messages(campaign).filter(status=Status.SENT).count()
    pause_campaign(actor=marketer, campaign=campaign)
    # when workers drain / then nothing more of this campaign goes out
    send_due_messages()
    assert campaign_messages(campaign).filter(status=Status.SENT).count() == sent_before
    # when resumed / then the rest goes, each contact once
    resume_campaign(actor=marketer, campaign=campaign)
    send_due_messages()
    assert campaign_messages(campaign).filter(status=Status.SENT).count() == 30
    campaign_mail = SandboxMessage.objects.filter(subject__startswith="News for")  # not the author's notices ("Sent" now too)
    assert campaign_mail.count() == 30
    assert campaign_mail.values("to_address").distinct().count() == 30


def test_pause_during_fan_out_stops_it_and_resume_continues_without_duplicates(
    marketer, approver, newsletter, version, settings, monkeypatch
):
    settings.MAILROOM_FANOUT_CHUNK = 10
    campaign, _people = started(marketer, approver, newsletter, version, n=25, prefix="y")
    prepare_recipients(campaign=campaign)
    # one chunk of 10 is created, then the campaign is paused before the next chunk
    original = fanout_module.transaction.atomic
    calls = {"n": 0}

    def pausing_atomic(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            Campaign.objects.filter(pk=campaign.pk).update(state=State.PAUSED)
        return original(*args, **kwargs)

    monkeypatch.setattr(fanout_module.transaction, "atomic", pausing_atomic)
    result = create_messages(campaign=campaign)
    monkeypatch.undo()
    assert result.stopped and result.messages == 10
    assert campaign_messages(campaign).count() == 10
    Campaign.objects.filter(pk=campaign.pk).update(state=State.SENDING)  # resume, as resume_campaign would after its own lock
    fan_out(campaign=campaign)
    assert campaign_messages(campaign).count() == 25
    assert CampaignRecipient.objects.filter(campaign=campaign, status="queued").count() == 25


def test_cancel_cancels_every_queued_message(sending, marketer):
    fan_out(campaign=sending)
    cancel_campaign(actor=marketer, campaign=sending)
    assert set(campaign_messages(sending).values_list("status", flat=True)) == {Status.CANCELLED}
    send_due_messages()
    assert not SandboxMessage.objects.filter(subject__startswith="News for").exists()


# --- A/B test ------------------------------------------------------------------------------------
def test_ab_test_sends_the_share_then_the_winner_by_click_rate_to_the_rest(marketer, approver, newsletter, version):
    people = make_people(newsletter, 40, prefix="ab")
    campaign = new_campaign(
        marketer,
        newsletter,
        make_segment("Forty", people),
        version,
        ab_test_share=50,
        ab_wait_hours=2,
        ab_metric=Campaign.Metric.CLICK,
        variants=[{"subject": "A: spring {{ contact.first_name }}"}, {"subject": "B: sale {{ contact.first_name }}"}],
    )
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    campaign.refresh_from_db()
    # the test share: 20 messages, 10 per variant; 20 wait for the winner
    assert campaign.fanout == Campaign.Fanout.TESTING
    assert campaign_messages(campaign).count() == 20
    holdouts = CampaignRecipient.objects.filter(campaign=campaign, status="holdout")
    assert holdouts.count() == 20
    reserved = set(holdouts.values_list("message_id", flat=True))
    assert None not in reserved and not OutboxMessage.objects.filter(pk__in=reserved).exists()
    send_due_messages()
    # B's readers click more
    for recipient in CampaignRecipient.objects.filter(campaign=campaign, variant__label="B").select_related("message")[:4]:
        event(recipient.message, DeliveryEvent.Kind.CLICKED)
    for recipient in CampaignRecipient.objects.filter(campaign=campaign, variant__label="A").select_related("message")[:1]:
        event(recipient.message, DeliveryEvent.Kind.CLICKED)
    # before the wait is over nothing happens
    assert pick_winner(campaign=campaign) is None
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        run_campaigns()
        campaign.refresh_from_db()
        assert campaign.winner.label == "B" and campaign.fanout == Campaign.Fanout.DONE
        rest = CampaignRecipient.objects.filter(campaign=campaign, is_test=False)
        assert rest.count() == 20 and set(rest.values_list("variant__label", flat=True)) == {"B"}
        assert set(rest.values_list("message_id", flat=True)) == reserved
        assert set(OutboxMessage.objects.filter(pk__in=reserved).values_list("metadata__variant", flat=True)) == {"B"}
        send_due_messages()
    assert SandboxMessage.objects.filter(subject__startswith="B: sale").count() == 30
    assert SandboxMessage.objects.filter(subject__startswith="A: spring").count() == 10
    report = campaign_report(campaign)
    assert [(v["label"], v["sent"], v["clicks"], v["is_winner"]) for v in report["variants"]] == [("A", 10, 1, False), ("B", 30, 4, True)]


def test_winner_by_open_rate_and_ties_go_to_the_first_variant(marketer, approver, newsletter, version):
    people = make_people(newsletter, 8, prefix="t")
    campaign = new_campaign(
        marketer, newsletter, make_segment("Eight", people), version, ab_test_share=50, variants=[{"subject": "one"}, {"subject": "two"}]
    )
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    scores = variant_scores(campaign)
    assert choose_winner(campaign, scores).label == "A"  # nobody opened: a tie
    second = CampaignRecipient.objects.filter(campaign=campaign, variant__label="B").select_related("message").first()
    event(second.message, DeliveryEvent.Kind.OPENED)
    assert choose_winner(campaign, variant_scores(campaign)).label == "B"


# --- guardrails ------------------------------------------------------------------------------------
def test_complaints_above_the_limit_pause_the_campaign_and_tell_the_author(marketer, approver, newsletter, version, settings):
    settings.MAILROOM_GUARDRAIL_MIN_SENT = 10
    people = make_people(newsletter, 20, prefix="c")
    campaign = new_campaign(marketer, newsletter, make_segment("Twenty", people), version)
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages(limit=12, time_budget=0.001)
    sent = campaign_messages(campaign).filter(status=Status.SENT)
    event(sent.first(), DeliveryEvent.Kind.COMPLAINED)  # 1 of 12+ sent: > 0.3 %
    run_campaigns()
    campaign.refresh_from_db()
    assert campaign.state == State.PAUSED and "complaint rate" in campaign.pause_reason
    assert OutboxMessage.objects.filter(to_address=marketer.email, subject="Paused: Spring sale").exists()
    assert campaign_messages(campaign).filter(status=Status.QUEUED, next_attempt_at__year=2999).exists()


def test_hard_bounces_above_the_limit_pause_but_a_few_early_ones_do_not(marketer, approver, newsletter, version, settings):
    settings.MAILROOM_GUARDRAIL_MIN_SENT = 10
    people = make_people(newsletter, 12, prefix="b")
    campaign = new_campaign(marketer, newsletter, make_segment("Twelve", people), version, bounce_rate_limit=Decimal("5"))
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages(limit=5, time_budget=0.001)
    event(campaign_messages(campaign).filter(status=Status.SENT).first(), DeliveryEvent.Kind.BOUNCED)
    run_campaigns()  # 1 bounce among 5 sent: too few sent to judge
    campaign.refresh_from_db()
    assert campaign.state == State.SENDING
    send_due_messages()
    run_campaigns()  # 1 of 12 = 8.3 % > 5 %
    campaign.refresh_from_db()
    assert campaign.state == State.PAUSED and "hard-bounce" in campaign.pause_reason


def test_frequency_cap_applies_across_campaigns(marketer, approver, newsletter, version, settings):
    settings.MAILROOM_FREQUENCY_CAP = 1
    people = make_people(newsletter, 3, prefix="f")
    segment = make_segment("Three", people)
    first = new_campaign(marketer, newsletter, segment, version)
    approve_and_start(first, marketer, approver)
    fan_out(campaign=first)
    second = new_campaign(marketer, newsletter, segment, version)

    with pytest.raises(InvalidInput, match="empty audience"):
        submit_campaign(actor=marketer, campaign=second)
    assert campaign_messages(second).count() == 0


def test_reminders_do_not_count_against_the_frequency_cap(marketer, approver, newsletter, version, settings):
    settings.MAILROOM_FREQUENCY_CAP = 1
    reminders = Topic.objects.create(key="reminders", name="Reminders", kind=Topic.Kind.MARKETING, time_sensitive=True)
    people = make_people(newsletter, 2, prefix="r")
    # given each got an appointment reminder this week, and the first also a promotion
    for person in people:
        enqueue_message(channel="email", contact=person, topic=reminders, subject="Tomorrow at 10:00", text="See you")
    enqueue_message(channel="email", contact=people[0], topic=newsletter, subject="Sale", text="Sale")
    # when a campaign is dry-run / then only the promotion counts
    result = dry_run(campaign=new_campaign(marketer, newsletter, make_segment("Two", people), version))
    assert (result.eligible, result.over_frequency_cap) == (1, 1)


# --- time zones, throttle, quiet hours --------------------------------------------------------------
def test_nine_local_uses_each_contacts_time_zone(marketer, approver, newsletter, version):
    paris = make_people(newsletter, 2, prefix="paris", timezone="Europe/Paris")
    ny = make_people(newsletter, 1, prefix="ny", timezone="America/New_York")
    tokyo = make_people(newsletter, 1, prefix="tokyo", timezone="Asia/Tokyo")
    with time_machine.travel(datetime(2030, 3, 1, 12, 0, tzinfo=UTC), tick=False):
        campaign = new_campaign(
            marketer,
            newsletter,
            make_segment("World", [*paris, *ny, *tokyo]),
            version,
            send_mode=Campaign.SendMode.LOCAL,
            send_at=datetime(2030, 3, 5, 0, 0, tzinfo=UTC),
            local_time=time(9, 0),
        )

        submit_campaign(actor=marketer, campaign=campaign)
        approve_campaign(actor=approver, campaign=campaign)
        schedule_campaign(actor=marketer, campaign=campaign)
        # the campaign starts when the first zone on Earth reaches 09:00 that day
        assert local_start(campaign.send_at, campaign.local_time) == datetime(2030, 3, 4, 19, 0, tzinfo=UTC)
    with time_machine.travel(datetime(2030, 3, 4, 18, 59, tzinfo=UTC), tick=False):
        assert run_campaigns()["started"] == 0
    with time_machine.travel(datetime(2030, 3, 4, 19, 1, tzinfo=UTC), tick=False):
        run_campaigns()
        times = {m.contact.email: m.next_attempt_at for m in campaign_messages(campaign).select_related("contact")}
        assert times["paris0@example.com"] == datetime(2030, 3, 5, 8, 0, tzinfo=UTC)  # 09:00 CET
        assert times["ny0@example.com"] == datetime(2030, 3, 5, 14, 0, tzinfo=UTC)  # 09:00 EST
        assert times["tokyo0@example.com"] == datetime(2030, 3, 5, 0, 0, tzinfo=UTC)  # 09:00 JST
        send_due_messages()
        assert not campaign_messages(campaign).filter(status=Status.SENT).exists()  # nobody's 09:00 yet
    with time_machine.travel(datetime(2030, 3, 5, 8, 30, tzinfo=UTC), tick=False):
        send_due_messages()
        sent = campaign_messages(campaign).filter(status=Status.SENT)
        assert sorted(sent.values_list("to_address", flat=True)) == ["paris0@example.com", "paris1@example.com", "tokyo0@example.com"]


def test_throttle_spreads_sends_and_quiet_hours_move_them(marketer, approver, newsletter, version):
    people = make_people(newsletter, 6, prefix="q", timezone="Europe/Paris")
    with time_machine.travel(datetime(2030, 6, 1, 19, 30, tzinfo=UTC), tick=False):  # 21:30 in Paris
        campaign = new_campaign(
            marketer,
            newsletter,
            make_segment("Six", people),
            version,
            throttle_per_hour=2,
            quiet_hours_start=time(22, 0),
            quiet_hours_end=time(8, 0),
        )
        approve_and_start(campaign, marketer, approver)
        fan_out(campaign=campaign)
        times = sorted(campaign_messages(campaign).values_list("next_attempt_at", flat=True))
    # two before 22:00 Paris (19:30 and 20:00 UTC is 22:00: quiet), the rest at 08:00 Paris (06:00 UTC)
    assert times[0] == datetime(2030, 6, 1, 19, 30, tzinfo=UTC)
    assert all(t == datetime(2030, 6, 2, 6, 0, tzinfo=UTC) for t in times[1:])


# --- the minute tick -------------------------------------------------------------------------------
def test_the_tick_starts_due_campaigns_once_and_not_future_ones(approved, marketer):
    update_campaign(actor=marketer, campaign=approved, name="renamed")  # a name change keeps the approval
    with time_machine.travel(timezone.now(), tick=False):
        schedule_campaign(actor=marketer, campaign=approved)
        first = run_campaigns()
        second = run_campaigns()
    approved.refresh_from_db()
    assert first["started"] == 1 and second["started"] == 0
    assert approved.state == State.SENDING and campaign_messages(approved).count() == 6


def test_a_campaign_scheduled_for_later_waits(marketer, approver, newsletter, segment, version):
    campaign = new_campaign(
        marketer, newsletter, segment, version, send_mode=Campaign.SendMode.AT, send_at=timezone.now() + timedelta(hours=5)
    )

    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    assert run_campaigns()["started"] == 0
    with time_machine.travel(timezone.now() + timedelta(hours=6)):
        assert run_campaigns()["started"] == 1


# --- conversions ------------------------------------------------------------------------------------
def test_an_order_within_five_days_of_a_click_is_attributed_to_the_last_clicked_campaign(sending, people):
    fan_out(campaign=sending)
    send_due_messages()
    message = campaign_messages(sending).get(contact=people[0])
    event(message, DeliveryEvent.Kind.CLICKED, link=1)
    record_order(contact=people[0], external_id="o-1", amount="42.50", status="paid")
    record_order(contact=people[1], external_id="o-2", amount="10", status="paid")  # never clicked
    with time_machine.travel(timezone.now() + timedelta(days=6)):
        record_order(contact=people[0], external_id="o-3", amount="99", status="paid")  # too late
    run_campaigns()
    conversions = CampaignConversion.objects.filter(campaign=sending)
    assert list(conversions.values_list("order__external_id", "revenue")) == [("o-1", Decimal("42.50"))]
    report = campaign_report(sending)
    assert report["conversions"] == 1 and report["revenue"] == Decimal("42.50") and report["clicks"] == 1
