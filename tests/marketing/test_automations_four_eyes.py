"""Four eyes for automations that fan out to many contacts (issue 16, item 3; invariant 9).

The attack: a marketer activated a schedule automation whose audience was "All customers"
and 44 marketing mails went out with nobody else looking. Every test drives the real
actions, the real scans and the runner (`tick`), and looks at what reached the outbox."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from marketing import demo
from marketing.automations.actions import (
    activate_automation,
    create_automation,
    create_automation_from_preset,
    pause_automation,
    update_automation,
    update_step,
)
from marketing.automations.approval import AutomationFourEyesViolation, approve_automation, reject_automation
from marketing.events import track_event
from marketing.models import Automation, AutomationRun, Segment
from marketing.segments.actions import add_static_members, create_segment, refresh_segment, update_segment
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.content.versions import activate_template_version, save_template_version
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, OutboxMessage, Template
from tests.conftest import make_user
from tests.marketing.conftest import inbox

pytestmark = pytest.mark.django_db
State = Automation.State
MONDAY_NINE = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
CUSTOMERS = {
    "type": "group",
    "op": "and",
    "rules": [{"type": "rule", "field": "attribute", "operator": "equals", "value": "customer", "key": "lifecycle_stage"}],
}
EVERYONE_WITH_A_STAGE = {
    "type": "group",
    "op": "and",
    "rules": [{"type": "rule", "field": "attribute", "operator": "is_set", "key": "lifecycle_stage"}],
}


def customer(email: str, catalog, stage: str = "customer"):
    contact = create_contact(actor=None, email=email, first_name="Ada", attributes={"lifecycle_stage": stage})
    subscribe(actor=None, contact=contact, topic=catalog["product-news"])
    return contact


@pytest.fixture
def all_customers(catalog, clock, marketer) -> Segment:
    """ "All customers": three customers, and a lead the rules leave out."""
    for email in ("c1@example.com", "c2@example.com", "c3@example.com"):
        customer(email, catalog)
    customer("lead@example.com", catalog, stage="lead")
    segment = create_segment(name="All customers", actor=marketer, rules=CUSTOMERS)
    return refresh_segment(segment=segment, actor=marketer)


def weekly_to(segment: Segment, author) -> Automation:
    """Every Monday 09:00, the welcome email to every member of `segment`."""
    return create_automation(
        actor=author,
        name="Monday blast",
        trigger_type="schedule",
        trigger={"weekday": 0, "time": "09:00"},
        audience=segment,
        steps=[{"kind": "send", "config": {"template": "welcome", "channel": "email"}}],
    )


def marketing_messages() -> list[str]:
    return sorted(OutboxMessage.objects.filter(metadata__has_key="automation").values_list("to_address", flat=True))


def approved(automation: Automation, approver) -> Automation:
    return approve_automation(actor=approver, automation=automation)


# --- the attack ----------------------------------------------------------------------------
def _schedule(segment, catalog, clock):
    return {"trigger_type": "schedule", "trigger": {"weekday": 0, "time": "09:00"}, "audience": segment}, lambda: clock.move_to(MONDAY_NINE)


def _broadcast_event(segment, catalog, clock):
    def fire():
        track_event(contact=segment.members.first().contact, name="content_published", properties={"content": {"title": "x"}})

    return {"trigger_type": "event", "trigger": {"events": ["content_published"], "fan_out": True}, "audience": segment}, fire


def _segment_entry(segment, catalog, clock):
    def fire():
        clock.shift(timedelta(minutes=5))
        customer("c4@example.com", catalog)
        refresh_segment(segment=segment, actor=None)

    return {"trigger_type": "segment_entry", "trigger": {"segment": segment.pk}}, fire


@pytest.mark.parametrize("trigger", [_schedule, _broadcast_event, _segment_entry], ids=["schedule", "broadcast-event", "segment-entry"])
def test_marketer_activating_a_fan_out_automation_sends_nothing_and_waits_for_approval(
    all_customers, catalog, clock, tick, marketer, trigger
):
    # given a marketer's automation whose one trigger reaches every member of "All customers"
    fields, fire = trigger(all_customers, catalog, clock)
    flow = create_automation(
        actor=marketer, name="Blast", steps=[{"kind": "send", "config": {"template": "welcome", "channel": "email"}}], **fields
    )
    # when the marketer activates it and the trigger fires, with the scans and the runner at work
    flow = activate_automation(actor=marketer, automation=flow)
    fire()
    tick()
    tick()
    # then no run started and nothing reached the outbox or an inbox, and it waits for approval
    assert AutomationRun.objects.count() == 0 and marketing_messages() == [] and inbox() == []
    flow.refresh_from_db()
    assert flow.state == "pending" and flow.approved_at is None and flow.submitted_by == marketer
    assert AuditEntry.objects.filter(verb="submitted", target_type="marketing.automation", actor=marketer).exists()


def test_author_cannot_approve_their_own_fan_out_automation(all_customers, catalog, clock, tick):
    # given someone who is both marketer and approver, and wrote and activated the automation
    lead = make_user("lead", "Marketer")
    lead.groups.add(Group.objects.get(name="Approver"))
    flow = activate_automation(actor=lead, automation=weekly_to(all_customers, lead))
    # when they approve it themselves
    with pytest.raises(AutomationFourEyesViolation):
        approve_automation(actor=lead, automation=flow)
    # then it still waits, nothing is audited as approved, and Monday sends nothing
    clock.move_to(MONDAY_NINE)
    tick()
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL and flow.approved_by is None
    assert not AuditEntry.objects.filter(verb="approved", target_type="marketing.automation").exists()
    assert marketing_messages() == []


def test_marketer_without_the_approve_permission_cannot_approve_a_colleagues_automation(all_customers, marketer):
    colleague = make_user("colleague", "Marketer")
    flow = activate_automation(actor=colleague, automation=weekly_to(all_customers, colleague))
    with pytest.raises(AutomationFourEyesViolation):
        approve_automation(actor=marketer, automation=flow)
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL


def test_approver_approves_and_the_automation_then_runs(all_customers, catalog, clock, tick, marketer, approver):
    flow = activate_automation(actor=marketer, automation=weekly_to(all_customers, marketer))
    # when the approver approves it
    flow = approved(flow, approver)
    assert (flow.state, flow.approved_by) == (State.ACTIVE, approver)
    # then on Monday 09:00 the three customers (and not the lead) get the mail
    clock.move_to(MONDAY_NINE)
    tick()
    tick()
    assert marketing_messages() == ["c1@example.com", "c2@example.com", "c3@example.com"]
    assert AuditEntry.objects.filter(verb="approved", target_type="marketing.automation", actor=approver).exists()


# --- approved means approved ------------------------------------------------------------------
def test_widening_the_segment_rules_of_an_approved_automation_returns_it_to_waiting(
    all_customers, catalog, clock, tick, marketer, approver
):
    # given an approved, active Monday automation to "All customers"
    flow = approved(activate_automation(actor=marketer, automation=weekly_to(all_customers, marketer)), approver)
    # when a marketer widens the segment's rules (every contact with a stage: the lead too) and it refreshes
    update_segment(segment=all_customers, actor=marketer, rules=EVERYONE_WITH_A_STAGE)
    refresh_segment(segment=all_customers, actor=None)
    clock.move_to(MONDAY_NINE)
    tick()
    tick()
    # then it waits for approval again, and nobody (least of all the lead) was sent anything
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL and flow.approved_at is None and flow.submitted_by == marketer
    assert marketing_messages() == []
    assert AuditEntry.objects.filter(verb="approval withdrawn", target_type="marketing.automation").exists()
    # and once someone approves the wider audience, it goes to the four of them
    approved(flow, approver)
    tick()
    tick()
    assert marketing_messages() == ["c1@example.com", "c2@example.com", "c3@example.com", "lead@example.com"]


def test_adding_members_to_the_static_segment_of_an_approved_automation_returns_it_to_waiting(catalog, clock, tick, marketer, approver):
    # given an approved automation to a static segment of one contact
    one = customer("one@example.com", catalog)
    customer("other@example.com", catalog)
    segment = create_segment(name="Hand-picked", actor=marketer, kind=Segment.Kind.STATIC)
    add_static_members(segment=segment, identifiers=[one.email], actor=marketer)
    flow = approved(activate_automation(actor=marketer, automation=weekly_to(segment, marketer)), approver)
    # when a marketer adds a member
    add_static_members(segment=segment, identifiers=["other@example.com"], actor=marketer)
    clock.move_to(MONDAY_NINE)
    tick()
    # then it waits for approval and nothing went out
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL and marketing_messages() == []


def test_changing_the_send_step_template_of_an_approved_automation_returns_it_to_waiting(
    all_customers, catalog, clock, tick, marketer, approver
):
    flow = approved(activate_automation(actor=marketer, automation=weekly_to(all_customers, marketer)), approver)
    # when the marketer swaps the template of the send step while it is live
    update_step(actor=marketer, step=flow.steps.get(), config={"template": "re-engagement", "channel": "email"})
    clock.move_to(MONDAY_NINE)
    tick()
    # then it waits for approval and the swapped template reached nobody
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL and marketing_messages() == []


def test_new_template_content_after_approval_is_not_sent_and_returns_it_to_waiting(all_customers, catalog, clock, tick, marketer, approver):
    flow = approved(activate_automation(actor=marketer, automation=weekly_to(all_customers, marketer)), approver)
    # when the marketer puts new content live in the template the send step uses
    welcome = Template.objects.get(key="welcome", locale="en")
    version = save_template_version(
        actor=marketer,
        template=welcome,
        subject="Flash sale",
        body_format="html",
        body='<p>Buy now</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        text_body="Buy now {{ unsubscribe_url }}",
    )
    activate_template_version(actor=marketer, version=version)
    clock.move_to(MONDAY_NINE)
    tick()
    tick()
    # then the new content reached nobody and the automation waits for a new approval
    assert marketing_messages() == []
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL and flow.approved_at is None
    # and once approved again, the runs held at the send step go out with it
    approved(flow, approver)
    tick()
    assert len(marketing_messages()) == 3


def test_widening_the_trigger_of_a_live_event_automation_to_a_broadcast_needs_approval(all_customers, catalog, clock, tick, marketer):
    # given a one-contact-per-event automation, live without approval
    flow = create_automation(
        actor=marketer,
        name="Per event",
        trigger_type="event",
        trigger={"events": ["content_published"]},
        audience=all_customers,
        steps=[{"kind": "send", "config": {"template": "welcome", "channel": "email"}}],
    )
    flow = activate_automation(actor=marketer, automation=flow)
    assert flow.state == State.ACTIVE
    # when the marketer makes the event a broadcast to the whole audience
    update_automation(actor=marketer, automation=flow, trigger={"events": ["content_published"], "fan_out": 1})
    track_event(contact=all_customers.members.first().contact, name="content_published")
    tick()
    # then it waits for approval and nothing was sent
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL and flow.trigger["fan_out"] is True and marketing_messages() == []


def test_renaming_an_approved_automation_keeps_its_approval(all_customers, marketer, approver):
    flow = approved(activate_automation(actor=marketer, automation=weekly_to(all_customers, marketer)), approver)
    flow = update_automation(actor=marketer, automation=flow, name="Monday news", description="Shown to nobody")
    assert flow.state == State.ACTIVE and flow.approved_by == approver


def test_pause_and_resume_keeps_the_approval_but_a_change_while_paused_needs_a_new_one(all_customers, marketer, approver):
    flow = approved(activate_automation(actor=marketer, automation=weekly_to(all_customers, marketer)), approver)
    pause_automation(actor=marketer, automation=flow)
    assert activate_automation(actor=marketer, automation=flow).state == State.ACTIVE
    pause_automation(actor=marketer, automation=flow)
    update_segment(segment=all_customers, actor=marketer, rules=EVERYONE_WITH_A_STAGE)
    assert activate_automation(actor=marketer, automation=flow).state == State.PENDING_APPROVAL


def test_approver_rejects_with_a_reason(all_customers, marketer, approver):
    flow = activate_automation(actor=marketer, automation=weekly_to(all_customers, marketer))
    with pytest.raises(InvalidInput):
        reject_automation(actor=approver, automation=flow, reason="  ")
    flow = reject_automation(actor=approver, automation=flow, reason="Too broad")
    assert (flow.state, flow.rejection_reason) == (State.DRAFT, "Too broad")
    assert AuditEntry.objects.filter(verb="rejected", target_type="marketing.automation", actor=approver).exists()


# --- one contact per event: unchanged ----------------------------------------------------------
def test_one_contact_per_event_automation_still_activates_directly(catalog, clock, tick, marketer, committed):
    # given the welcome preset (one run for the contact who registered)
    flow = activate_automation(actor=marketer, automation=create_automation_from_preset(actor=marketer, key="welcome"))
    assert flow.state == State.ACTIVE and flow.approved_at is None
    # when someone registers
    ada = customer("ada@example.com", catalog)
    with committed():
        track_event(contact=ada, name="user_registered")
    tick()
    # then the welcome goes to that one contact
    assert marketing_messages() == ["ada@example.com"]


def test_demo_welcome_automation_is_active_after_seed(catalog):
    demo.load()
    assert Automation.objects.get(preset="welcome").state == State.ACTIVE


# --- the API and the console go through the same actions ------------------------------------------
def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_cannot_bypass_the_approval(all_customers, catalog, clock, tick, marketer, approver):
    url = "/api/v1/automations/"
    api = api_for(marketer)
    created = api.post(
        url,
        {
            "name": "API blast",
            "trigger_type": "schedule",
            "trigger": {"weekday": 0, "time": "09:00"},
            "audience": all_customers.pk,
            "steps": [{"kind": "send", "config": {"template": "welcome"}}],
        },
        format="json",
    )
    pk = created.json()["id"]
    # when the marketer activates it through the API
    activated = api.post(f"{url}{pk}/activate/")
    assert activated.status_code == 200 and activated.json()["state"] == "pending" and activated.json()["fans_out"] is True
    # then neither approving it themselves nor writing the state gets it live
    assert api.post(f"{url}{pk}/approve/").status_code == 403
    api.patch(f"{url}{pk}/", {"state": "active", "approved_at": "2026-03-01T00:00:00Z"}, format="json")
    clock.move_to(MONDAY_NINE)
    tick()
    assert Automation.objects.get(pk=pk).state == State.PENDING_APPROVAL and marketing_messages() == []
    # and an approver's approval does
    answer = api_for(approver).post(f"{url}{pk}/approve/")
    assert answer.status_code == 200 and answer.json()["state"] == "active" and answer.json()["approved_by"] == approver.pk
    tick()
    assert len(marketing_messages()) == 3
    # and a change to its trigger through the API sends it back to waiting
    changed = api.patch(f"{url}{pk}/", {"trigger": {"weekday": 1, "time": "09:00"}}, format="json")
    assert changed.json()["state"] == "pending"


def test_api_author_with_the_approver_role_gets_a_four_eyes_conflict(all_customers, marketer):
    lead = make_user("lead", "Marketer")
    lead.groups.add(Group.objects.get(name="Approver"))
    flow = activate_automation(actor=lead, automation=weekly_to(all_customers, lead))
    answer = api_for(lead).post(f"/api/v1/automations/{flow.pk}/approve/")
    assert answer.status_code == 409 and answer.json()["code"] == "four_eyes"


def test_api_refuses_to_delete_a_segment_an_automation_uses(all_customers, marketer):
    flow = weekly_to(all_customers, marketer)
    answer = api_for(marketer).delete(f"/api/v1/segments/{all_customers.pk}/")
    assert answer.status_code == 409 and answer.json()["code"] == "segment_in_use"
    flow.refresh_from_db()
    assert flow.audience == all_customers


def test_console_activate_waits_and_approver_approves_from_the_approval_queue(all_customers, client, marketer, approver):
    flow = weekly_to(all_customers, marketer)
    # the marketer activates it on the flow page
    client.force_login(marketer)
    client.post(f"/admin/marketing/automation/{flow.pk}/flow/state/", {"to": "active"})
    flow.refresh_from_db()
    assert flow.state == State.PENDING_APPROVAL
    # and cannot approve it from the console
    assert client.post(f"/admin/marketing/automation/{flow.pk}/flow/review/approve/").status_code == 403
    own = client.get(f"/admin/marketing/automation/{flow.pk}/flow/").content.decode()
    assert 'data-testid="approval-waiting"' in own and 'data-testid="own-automation"' in own and 'data-testid="approve"' not in own
    # the approver finds the queue in the sidebar and the automation in it
    client.force_login(approver)
    home = client.get("/admin/").content.decode()
    assert "/admin/marketing/campaign/approvals/" in home
    queue = client.get("/admin/marketing/campaign/approvals/").content.decode()
    assert f'data-automation="{flow.pk}"' in queue and "Monday blast" in queue
    assert 'data-testid="approve"' in client.get(f"/admin/marketing/automation/{flow.pk}/flow/").content.decode()
    client.post(f"/admin/marketing/automation/{flow.pk}/flow/review/approve/", {"next": "approvals"})
    flow.refresh_from_db()
    assert (flow.state, flow.approved_by) == (State.ACTIVE, approver)
    page = client.get(f"/admin/marketing/automation/{flow.pk}/flow/").content.decode()
    assert 'data-testid="approval-given"' in page
