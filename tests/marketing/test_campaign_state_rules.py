"""The console's buttons and edit link come from the rules in `campaigns.states`, and each
button shown is a move the transition table allows."""

from types import SimpleNamespace

import pytest

from marketing.campaigns import states
from marketing.models import Campaign

State = Campaign.State
TARGET = {
    "submit": State.PENDING_APPROVAL,
    "approve": State.APPROVED,
    "schedule": State.SCHEDULED,
    "pause": State.PAUSED,
    "resume": State.SENDING,
    "reopen": State.DRAFT,
    "cancel": State.CANCELLED,
}


def person(pk: int):
    return SimpleNamespace(pk=pk, is_active=True, has_perm=lambda perm: True)


def campaign_in(state: str):
    return SimpleNamespace(state=state, created_by_id=1, submitted_by_id=1)


@pytest.mark.parametrize("state", State.values)
def test_every_button_shown_is_an_allowed_move(state):
    # given someone allowed to do everything, who did not write the campaign
    buttons = states.buttons_for(campaign_in(state), person(2))
    # then each button is a transition the table allows from that state
    assert all(states.can_transition(state, TARGET[button["name"]]) for button in buttons)
    assert ("approve" in [b["name"] for b in buttons]) == (state == State.PENDING_APPROVAL)


def test_the_author_sees_no_approve_button_and_no_reject_form():
    waiting = campaign_in(State.PENDING_APPROVAL)
    assert "approve" not in [b["name"] for b in states.buttons_for(waiting, person(1))]
    assert not states.may_reject(waiting, person(1))
    assert states.may_reject(waiting, person(2))


@pytest.mark.parametrize("state", State.values)
def test_edit_and_recipient_removal_follow_the_state(state):
    campaign = campaign_in(state)
    assert states.may_edit(campaign, person(2)) == (state in states.EDITABLE)
    assert states.may_remove_recipients(campaign, person(2)) == (state in {State.SENDING, State.PAUSED})
    assert states.can_reschedule(campaign) == (state == State.SCHEDULED)
