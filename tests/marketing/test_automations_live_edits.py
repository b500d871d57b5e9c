"""Editing the steps of an automation while runs are in flight: each run keeps its place
(nothing done twice, nothing ahead of it skipped), conditions' "go to" follow the steps they
named, and a swap that would make a run repeat or skip a step is refused."""

from datetime import timedelta

import pytest
from django.urls import reverse

from marketing.automations.actions import AutomationStateError, add_step, move_step, remove_step
from marketing.events import track_event
from marketing.models import AutomationRun
from messaging.errors import InvalidInput
from tests.marketing.conftest import inbox
from tests.marketing.test_automations import automation, person, send

pytestmark = pytest.mark.django_db


def wait(hours):
    return {"kind": "wait", "config": {"hours": hours}}


def tag(name):
    return {"kind": "update", "config": {"add_tag": name}}


def kinds(flow):
    return list(flow.steps.order_by("position").values_list("kind", flat=True))


def test_a_step_added_behind_a_waiting_run_is_not_run_and_one_added_at_its_place_is(catalog, clock, tick, committed):
    # given a run waiting two hours before its send (its next step is number 2)
    flow = automation(steps=[wait(2), send(), wait(24), tag("done")])
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    run = flow.runs.get()
    assert run.next_step_index == 1
    # when a step is added before everything (behind the run) and another right where it stands
    add_step(actor=None, automation=flow, kind="update", config={"add_tag": "behind"}, position=0)
    run.refresh_from_db()
    assert run.next_step_index == 2  # still before the send, which moved to number 3
    add_step(actor=None, automation=flow, kind="update", config={"add_tag": "ahead"}, position=2)
    # then the run does the step ahead of it, sends once, and never goes back
    clock.shift(timedelta(hours=2))
    tick()
    clock.shift(timedelta(hours=24))
    tick()
    run.refresh_from_db()
    ada.refresh_from_db()
    assert run.status == AutomationRun.Status.COMPLETED and len(inbox()) == 1
    assert ada.attributes["tags"] == ["ahead", "done"]


def test_removing_a_step_behind_a_run_keeps_it_on_the_steps_it_has_not_done(catalog, clock, tick, committed):
    # given a run that has sent and waits two hours before tagging
    flow = automation(steps=[send(), wait(2), tag("later")])
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    assert len(inbox()) == 1 and flow.runs.get().next_step_index == 2
    # when the send it already did is removed
    remove_step(actor=None, step=flow.steps.get(position=0))
    # then it still tags after its wait, and sends nothing more
    clock.shift(timedelta(hours=2))
    tick()
    ada.refresh_from_db()
    assert ada.attributes["tags"] == ["later"] and len(inbox()) == 1
    assert flow.runs.get().status == AutomationRun.Status.COMPLETED


def test_removing_the_step_a_run_waits_for_moves_it_to_the_next_one(catalog, clock, tick, committed):
    flow = automation(steps=[wait(2), send(), tag("after")])
    ada = person(topics=catalog)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    remove_step(actor=None, step=flow.steps.get(position=1))
    clock.shift(timedelta(hours=2))
    tick()
    ada.refresh_from_db()
    assert inbox() == [] and ada.attributes["tags"] == ["after"]


def test_a_conditions_go_to_follows_the_step_it_named(catalog):
    condition = {"kind": "condition", "config": {"check": "tag", "tag": "vip", "else": {"goto": 3}}}
    flow = automation(steps=[condition, send(), tag("seen")])

    def goto():
        return flow.steps.get(kind="condition").config["else"]["goto"]

    add_step(actor=None, automation=flow, kind="wait", config={"hours": 1}, position=1)
    assert kinds(flow) == ["condition", "wait", "send", "update"] and goto() == 4
    add_step(actor=None, automation=flow, kind="update", config={"add_tag": "x"}, position=0)
    assert goto() == 5
    remove_step(actor=None, step=flow.steps.get(kind="wait"))
    assert goto() == 4 and flow.steps.get(position=3).config == {"add_tag": "seen"}


def test_swapping_two_steps_with_a_run_between_them_is_refused_and_changes_nothing(catalog, clock, tick, committed):
    # given a run that has sent (step 1) and waits for step 2
    flow = automation(steps=[send(), wait(2), tag("x")])
    with committed():
        track_event(contact=person(topics=catalog), name="signed_up")
    tick()
    assert flow.runs.get().next_step_index == 2
    # when steps 2 and 3 are swapped: refused, the run would skip or repeat one
    with pytest.raises(AutomationStateError, match="1 run has done step 2 and waits for step 3"):
        move_step(actor=None, step=flow.steps.get(position=2), offset=-1)
    assert kinds(flow) == ["send", "wait", "update"] and flow.runs.get().next_step_index == 2
    # and steps 1 and 2, both behind it, may be swapped
    move_step(actor=None, step=flow.steps.get(position=1), offset=-1)
    assert kinds(flow) == ["wait", "send", "update"]


def test_moving_a_condition_onto_its_go_to_target_is_refused(catalog):
    condition = {"kind": "condition", "config": {"check": "tag", "tag": "vip", "else": {"goto": 3}}}
    flow = automation(steps=[send(), condition, tag("seen")])
    with pytest.raises(InvalidInput):
        move_step(actor=None, step=flow.steps.get(kind="condition"), offset=1)
    assert kinds(flow) == ["send", "condition", "update"]


def test_the_console_says_why_a_swap_is_refused(catalog, client, marketer, clock, tick, committed):
    flow = automation(steps=[send(), wait(2), tag("x")])
    with committed():
        track_event(contact=person(topics=catalog), name="signed_up")
    tick()
    client.force_login(marketer)
    url = reverse("admin:marketing_automation_steps", args=[flow.pk])
    with committed():
        response = client.post(url, {"op": "up", "step": flow.steps.get(position=2).pk}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and b'data-testid="step-error"' in response.content
    assert "waits for step 3" in response.content.decode()
    assert kinds(flow) == ["send", "wait", "update"]


def test_a_send_that_lands_where_an_earlier_send_was_is_still_sent(catalog, clock, tick, committed):
    # given a run that has sent at step 3 and waits before its second send
    flow = automation(steps=[tag("a"), tag("b"), send(), wait(2), send()])
    with committed():
        track_event(contact=person(topics=catalog), name="signed_up")
    tick()
    assert len(inbox()) == 1 and flow.runs.get().next_step_index == 4
    # when the two steps behind it are removed, its second send becomes step 3
    remove_step(actor=None, step=flow.steps.get(position=0))
    remove_step(actor=None, step=flow.steps.get(position=0))
    assert flow.runs.get().next_step_index == 2
    clock.shift(timedelta(hours=2))
    tick()
    # then it is sent: the send's dedup key names the step, not its position
    assert len(inbox()) == 2 and flow.runs.get().status == AutomationRun.Status.COMPLETED
