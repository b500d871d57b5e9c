"""The automation engine: each trigger type, each step type, exit events, re-entry,
idempotent runs, consent, quiet hours and frequency caps — with the clock moved forward."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from marketing.automations.actions import activate_automation, create_automation, pause_automation
from marketing.automations.runner import claim_due_runs, run_due_steps, run_one_step
from marketing.automations.triggers import handle_event
from marketing.events import track_event
from marketing.models import Automation, AutomationRun, AutomationStepLog, Segment, SegmentMember
from messaging.consent import subscribe, suppress_address
from messaging.contacts import create_contact
from messaging.models import OutboxMessage, Suppression
from tests.marketing.conftest import go_live, inbox

pytestmark = pytest.mark.django_db
Status = AutomationRun.Status


def automation(*, steps, trigger_type="event", trigger=None, activate=True, **fields) -> Automation:
    flow = create_automation(
        actor=None,
        name=fields.pop("name", "Flow"),
        trigger_type=trigger_type,
        trigger=trigger or {"events": ["signed_up"]},
        steps=steps,
        **fields,
    )
    return go_live(flow) if activate else flow


def send(template="welcome", **config):
    return {"kind": "send", "config": {"template": template, "channel": "email", **config}}


def person(email="ada@example.com", *, consent=("product-news",), topics=None, **fields):
    contact = create_contact(actor=None, email=email, first_name="Ada", **fields)
    for key in consent:
        subscribe(actor=None, contact=contact, topic=topics[key])
    return contact


# --- triggers ------------------------------------------------------------------------------
def test_event_trigger_runs_only_when_the_property_filters_match(catalog, clock, tick, committed):
    # given an automation on cart_abandoned for carts of at least 50
    automation(
        trigger={"events": ["cart_abandoned"], "filters": [{"property": "total", "op": "gte", "value": 50}]},
        steps=[send("cart-abandoned")],
    )
    ada = person(consent=["promotions"], topics=catalog)
    # when a small cart and then a big one are abandoned
    with committed():
        track_event(contact=ada, name="cart_abandoned", properties={"total": 20})
        track_event(contact=ada, name="cart_abandoned", properties={"total": 80})
    tick()
    # then only the big cart started a run and sent a message
    runs = AutomationRun.objects.all()
    assert [run.context["total"] for run in runs] == [80]
    assert len(inbox("ada@example.com")) == 1


def test_the_same_event_twice_makes_one_run(catalog, clock, tick):
    flow = automation(steps=[send()])
    ada = person(topics=catalog)
    # when the host sends the same event twice with one idempotency key
    first, created = track_event(contact=ada, name="signed_up", idempotency_key="signup-1")
    again, created_again = track_event(contact=ada, name="signed_up", idempotency_key="signup-1")
    # and even if the receiver were called twice for it

    handle_event(first)
    tick()
    tick()
    # then one run, one message
    assert (created, created_again, first.pk) == (True, False, again.pk)
    assert flow.runs.count() == 1
    assert len(inbox()) == 1


def test_segment_entry_trigger_starts_a_run_for_each_new_member(catalog, clock, tick):
    vip = Segment.objects.create(name="VIP", kind=Segment.Kind.STATIC)
    flow = automation(trigger_type="segment_entry", trigger={"segment": vip.pk}, steps=[send()])
    ada, bob = person(topics=catalog), person("bob@example.com", topics=catalog)
    SegmentMember.objects.create(segment=vip, contact=bob, added_at=START_MINUS_DAY())  # a member before activation
    # when Ada enters the segment
    clock.shift(timedelta(minutes=5))
    SegmentMember.objects.create(segment=vip, contact=ada, added_at=datetime.now(UTC))
    tick()
    tick()
    # then only Ada gets a run (Bob was there before the automation went live)
    assert list(flow.runs.values_list("contact__email", flat=True)) == ["ada@example.com"]
    assert [m.to_address for m in inbox()] == ["ada@example.com"]


def START_MINUS_DAY() -> datetime:
    return datetime.now(UTC) - timedelta(days=1)


def test_date_attribute_trigger_fires_on_the_birthday_at_local_time(catalog, clock, tick):
    # given a yearly birthday automation at 09:00 local, and a Parisian born on 4 March
    flow = automation(trigger_type="date", trigger={"attribute": "birthday", "yearly": True, "at": "09:00"}, steps=[send()])
    ada = person(topics=catalog, timezone="Europe/Paris", attributes={"birthday": "1990-03-04"})
    # when the clock reaches 4 March 07:59 UTC (08:59 Paris) nothing happens
    clock.move_to(datetime(2026, 3, 4, 7, 59, tzinfo=UTC))
    tick()
    assert flow.runs.count() == 0
    # then at 08:00 UTC (09:00 Paris) the run starts, once, however often the scan runs
    clock.move_to(datetime(2026, 3, 4, 8, 0, tzinfo=UTC))
    tick()
    clock.shift(timedelta(minutes=1))
    tick()
    run = flow.runs.get()
    assert run.contact == ada and run.trigger_key == "date:birthday:2026-03-04T09:00:00+01:00"
    assert len(inbox()) == 1


def test_date_trigger_with_an_offset_before_a_datetime_attribute(catalog, clock, tick):
    flow = automation(trigger_type="date", trigger={"attribute": "renewal_at", "offset_minutes": -1440}, steps=[send()])
    person(topics=catalog, attributes={"renewal_at": "2026-03-05T12:00:00+00:00"})
    clock.move_to(datetime(2026, 3, 4, 11, 59, tzinfo=UTC))
    tick()
    assert flow.runs.count() == 0
    clock.move_to(datetime(2026, 3, 4, 12, 0, tzinfo=UTC))
    tick()
    assert flow.runs.count() == 1


def test_schedule_trigger_runs_monday_0900_in_each_contacts_time_zone(catalog, clock, tick):
    # given a Monday 09:00 schedule and contacts in Paris and New York
    flow = automation(trigger_type="schedule", trigger={"weekday": 0, "time": "09:00"}, steps=[send()])
    person("paris@example.com", topics=catalog, timezone="Europe/Paris")
    person("ny@example.com", topics=catalog, timezone="America/New_York")
    # when Monday 08:00 UTC comes (09:00 in Paris, 03:00 in New York)
    clock.move_to(datetime(2026, 3, 9, 8, 0, tzinfo=UTC))
    tick()
    assert list(flow.runs.values_list("contact__email", flat=True)) == ["paris@example.com"]
    # then New York's run starts at 13:00 UTC (09:00 EDT), and nobody gets a second one
    clock.move_to(datetime(2026, 3, 9, 13, 0, tzinfo=UTC))
    tick()
    tick()
    assert sorted(flow.runs.values_list("contact__email", flat=True)) == ["ny@example.com", "paris@example.com"]
    assert sorted(m.to_address for m in inbox()) == ["ny@example.com", "paris@example.com"]
    # and the next Monday is a new occurrence
    clock.move_to(datetime(2026, 3, 16, 8, 1, tzinfo=UTC))
    tick()
    assert flow.runs.filter(contact__email="paris@example.com").count() == 2


# --- steps ---------------------------------------------------------------------------------
def test_wait_for_a_duration_then_send(catalog, clock, tick, committed):
    flow = automation(steps=[{"kind": "wait", "config": {"hours": 2}}, send()])
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    run = flow.runs.get()
    assert run.next_step_index == 1 and run.next_run_at == datetime.now(UTC) + timedelta(hours=2)
    clock.shift(timedelta(hours=1, minutes=59))
    tick()
    assert inbox() == []
    clock.shift(timedelta(minutes=1))
    tick()
    run.refresh_from_db()
    assert len(inbox()) == 1 and run.status == Status.COMPLETED


def test_wait_until_a_local_time_uses_the_contacts_time_zone(catalog, clock, tick, committed):
    flow = automation(steps=[{"kind": "wait", "config": {"until": {"time": "09:00"}}}, send()])
    ada = person(topics=catalog, timezone="Asia/Tokyo")  # 10:00 UTC = 19:00 in Tokyo
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    # then the send waits for 09:00 Tokyo time tomorrow = 00:00 UTC
    assert flow.runs.get().next_run_at == datetime(2026, 3, 4, 0, 0, tzinfo=UTC)


def test_wait_until_a_past_time_can_skip_the_next_step(catalog, clock, tick, committed):
    flow = automation(
        steps=[
            {"kind": "wait", "config": {"until": {"property": "at", "offset_minutes": -60}, "if_past": "skip_next"}},
            send(),
            {"kind": "update", "config": {"add_tag": "done"}},
        ]
    )
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up", properties={"at": "2026-03-03T10:30:00+00:00"})  # 30 min away: -60 is past
    tick()
    ada.refresh_from_db()
    assert inbox() == [] and ada.attributes["tags"] == ["done"]
    assert list(flow.runs.get().logs.values_list("outcome", flat=True)) == ["skipped", "updated"]


def test_condition_exits_or_jumps_when_not_met(catalog, clock, tick, committed):
    # given: if the contact is on the pro plan send, else jump to the tag step
    flow = automation(
        steps=[
            {"kind": "condition", "config": {"check": "attribute", "name": "plan", "op": "eq", "value": "pro", "else": {"goto": 3}}},
            send(),
            {"kind": "update", "config": {"add_tag": "seen"}},
        ]
    )
    pro, free = person(topics=catalog, attributes={"plan": "pro"}), person("free@example.com", topics=catalog, attributes={"plan": "free"})
    with committed():
        track_event(contact=pro, name="signed_up")
        track_event(contact=free, name="signed_up")
    tick()
    assert [m.to_address for m in inbox()] == ["ada@example.com"]
    free_run = flow.runs.get(contact=free)
    assert list(free_run.logs.values_list("outcome", flat=True)) == ["branched", "updated"]
    # and with else = exit the run ends there
    exiting = automation(
        name="Exit", trigger={"events": ["other"]}, steps=[{"kind": "condition", "config": {"check": "tag", "tag": "vip"}}, send()]
    )
    with committed():
        track_event(contact=free, name="other")
    tick()
    run = exiting.runs.get()
    assert run.status == Status.EXITED and len(inbox()) == 1


def test_update_step_sets_attributes_and_tags_and_exit_step_ends_the_run(catalog, clock, tick, committed):
    flow = automation(
        steps=[
            {"kind": "update", "config": {"set": {"lifecycle_stage": "customer"}, "unset": ["cart"], "add_tag": "buyer"}},
            {"kind": "exit", "config": {"reason": "done"}},
            send(),
        ]
    )
    ada = person(topics=catalog, attributes={"cart": "x", "tags": ["old"]})
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    ada.refresh_from_db()
    assert ada.attributes == {"lifecycle_stage": "customer", "tags": ["old", "buyer"]}
    run = flow.runs.get()
    assert run.status == Status.COMPLETED and inbox() == []


# --- exits and re-entry ---------------------------------------------------------------------
def test_exit_event_ends_the_run_and_cancels_its_queued_message(catalog, clock, tick, committed):
    flow = automation(
        trigger={"events": ["cart_abandoned"]},
        steps=[send("cart-abandoned"), {"kind": "wait", "config": {"hours": 1}}, send("cart-abandoned")],
        exit_events=[{"event": "order_paid"}],
    )
    ada = person(consent=["promotions"], topics=catalog)
    with committed():
        track_event(contact=ada, name="cart_abandoned")
    run_due_steps(owner="test")  # the first message is queued, not sent yet
    queued = OutboxMessage.objects.get()
    # when the contact pays
    with committed():
        track_event(contact=ada, name="order_paid")
    clock.shift(timedelta(hours=2))
    tick()
    # then the run exited, the queued message was cancelled and nothing more was sent
    run = flow.runs.get()
    queued.refresh_from_db()
    assert run.status == Status.EXITED and run.exit_reason == "exit event order_paid"
    assert queued.status == OutboxMessage.Status.CANCELLED
    assert inbox() == []


def test_exit_event_with_match_only_ends_the_run_of_the_same_item(catalog, clock, tick, committed):
    flow = automation(
        trigger={"events": ["appointment_booked"]},
        steps=[{"kind": "wait", "config": {"days": 1}}, send()],
        exit_events=[{"event": "appointment_cancelled", "match": "appointment_id"}],
    )
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="appointment_booked", properties={"appointment_id": "A"})
        track_event(contact=ada, name="appointment_booked", properties={"appointment_id": "B"})
    tick()
    with committed():
        track_event(contact=ada, name="appointment_cancelled", properties={"appointment_id": "A"})
    statuses = dict(flow.runs.values_list("context__appointment_id", "status"))
    assert statuses == {"A": Status.EXITED, "B": Status.ACTIVE}


@pytest.mark.parametrize(
    ("reentry", "expected_runs", "expected_active"),
    [("once", 1, 1), ("after_exit", 1, 1), ("every_trigger", 2, 2), ("restart", 2, 1)],
)
def test_reentry_policy(catalog, clock, tick, reentry, expected_runs, expected_active, committed):
    flow = automation(steps=[{"kind": "wait", "config": {"days": 3}}, send()], reentry=reentry)
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    assert flow.runs.count() == expected_runs
    assert flow.runs.filter(status=Status.ACTIVE).count() == expected_active


def test_after_exit_lets_the_contact_in_again_once_the_run_ended(catalog, clock, tick, committed):
    flow = automation(steps=[send()], reentry="after_exit")
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    assert flow.runs.count() == 2 and len(inbox()) == 2


# --- consent, suppressions, quiet hours, caps ------------------------------------------------
def test_transactional_flow_needs_no_marketing_consent_but_never_sends_to_a_suppressed_address(catalog, clock, tick, committed):
    automation(trigger={"events": ["order_paid"]}, steps=[send("payment-confirmation")], is_transactional=True)
    ada = person(consent=[], topics=catalog)
    bob = person("bob@example.com", consent=[], topics=catalog)
    suppress_address(actor=None, address="bob@example.com", channel="email", reason=Suppression.Reason.HARD_BOUNCE)
    with committed():
        track_event(contact=ada, name="order_paid")
        track_event(contact=bob, name="order_paid")
    tick()
    assert [m.to_address for m in inbox()] == ["ada@example.com"]
    assert OutboxMessage.objects.get(to_address="bob@example.com").status == OutboxMessage.Status.SUPPRESSED


def test_marketing_flow_sends_only_with_consent_for_its_topic(catalog, clock, tick, committed):
    automation(steps=[send("welcome")])  # topic product-news
    ada = person(topics=catalog)  # subscribed to product-news
    bob = person("bob@example.com", consent=["newsletter"], topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
        track_event(contact=bob, name="signed_up")
    tick()
    assert [m.to_address for m in inbox()] == ["ada@example.com"]
    bob_message = OutboxMessage.objects.get(to_address="bob@example.com")
    assert bob_message.status == OutboxMessage.Status.SUPPRESSED and "consent" in bob_message.error


def test_a_transactional_flow_refuses_a_marketing_template(catalog, clock, tick, committed):
    flow = automation(steps=[send("welcome")], is_transactional=True)
    with committed():
        track_event(contact=person(topics=catalog), name="signed_up")
    tick()
    run = flow.runs.get()
    assert run.status == Status.FAILED and "marketing topic" in run.exit_reason
    assert OutboxMessage.objects.count() == 0


def test_quiet_hours_hold_a_marketing_message_until_they_end(catalog, clock, tick, committed):
    # given quiet hours 21:00-08:00 and a Parisian triggering at 22:30 local (21:30 UTC)
    automation(steps=[send()], quiet_hours_start="21:00", quiet_hours_end="08:00")
    ada = person(topics=catalog, timezone="Europe/Paris")
    clock.move_to(datetime(2026, 3, 3, 21, 30, tzinfo=UTC))
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    # then the message is scheduled for 08:00 Paris (07:00 UTC) and sent only then
    message = OutboxMessage.objects.get()
    assert message.scheduled_at == datetime(2026, 3, 4, 7, 0, tzinfo=UTC) and inbox() == []
    clock.move_to(datetime(2026, 3, 4, 6, 59, tzinfo=UTC))
    tick()
    assert inbox() == []
    clock.move_to(datetime(2026, 3, 4, 7, 0, tzinfo=UTC))
    tick()
    assert len(inbox()) == 1


def test_quiet_hours_do_not_hold_a_transactional_message(catalog, clock, tick, committed):
    automation(
        trigger={"events": ["order_paid"]},
        steps=[send("payment-confirmation")],
        is_transactional=True,
        quiet_hours_start="21:00",
        quiet_hours_end="08:00",
    )
    clock.move_to(datetime(2026, 3, 3, 23, 0, tzinfo=UTC))
    with committed():
        track_event(contact=person(consent=[], topics=catalog), name="order_paid")
    tick()
    assert len(inbox()) == 1


def test_frequency_cap_postpones_a_marketing_send(catalog, clock, tick, committed):
    # given a cap of one marketing message per 24 h, and a message sent an hour ago
    flow = automation(steps=[send()], frequency_cap=1, frequency_window_hours=24, reentry="every_trigger")
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    clock.shift(timedelta(hours=1))
    # when the flow triggers again
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    # then the second send waits until the window frees (23 h later)
    second = flow.runs.order_by("id").last()
    assert len(inbox()) == 1
    assert second.next_run_at == datetime.now(UTC) + timedelta(hours=23, seconds=1)
    assert second.logs.get().outcome == AutomationStepLog.Outcome.POSTPONED
    clock.shift(timedelta(hours=23, seconds=1))
    tick()
    assert len(inbox()) == 2


# --- running ------------------------------------------------------------------------------
def test_a_paused_automation_starts_and_runs_nothing_until_activated_again(catalog, clock, tick, committed):
    flow = automation(steps=[{"kind": "wait", "config": {"hours": 1}}, send()])
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    pause_automation(actor=None, automation=flow)
    clock.shift(timedelta(hours=2))
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    assert flow.runs.count() == 1 and inbox() == []
    activate_automation(actor=None, automation=flow)
    tick()
    assert len(inbox()) == 1


def test_a_run_leased_to_another_worker_is_not_executed(catalog, clock, committed):
    flow = automation(steps=[send()])
    with committed():
        track_event(contact=person(topics=catalog), name="signed_up")
    ids = claim_due_runs(limit=10, owner="worker-a")
    # when another worker tries the same run while the lease holds
    assert claim_due_runs(limit=10, owner="worker-b") == []
    assert run_one_step(run_id=ids[0], owner="worker-b") is False
    # then only the owner executes it
    run_one_step(run_id=ids[0], owner="worker-a")
    assert flow.runs.get().logs.count() == 1 and OutboxMessage.objects.count() == 1


def test_a_lease_left_by_a_dead_worker_expires_and_the_step_runs_once(catalog, clock, settings, committed):
    flow = automation(steps=[send()])
    with committed():
        track_event(contact=person(topics=catalog), name="signed_up")
    claim_due_runs(limit=10, owner="dead-worker")
    clock.shift(timedelta(seconds=settings.MAILROOM_LEASE_SECONDS + 1))
    run_due_steps(owner="survivor")
    run_due_steps(owner="survivor")
    assert flow.runs.get().status == Status.COMPLETED and OutboxMessage.objects.count() == 1


def test_a_failing_receiver_never_breaks_event_ingestion(catalog, clock, caplog, committed):
    automation(steps=[send()])
    with mock.patch("marketing.automations.triggers.start_runs_for_event", side_effect=RuntimeError("boom")), committed():
        event, created = track_event(contact=person(topics=catalog), name="signed_up")
    assert created and event.pk
    assert "automations could not handle event" in caplog.text
