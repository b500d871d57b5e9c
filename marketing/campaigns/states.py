"""The campaign state machine, as one explicit table of allowed transitions.

    draft → pending_approval → approved → scheduled → sending ⇄ paused → sent
    pending_approval → rejected → draft;   edits after submission → draft
    any state before sent → cancelled

Every action calls `check_transition` after locking the row, so a transition that is not
in the table is refused with the same error whoever asks (console, API, task). What may be
done to a campaign in its state (edit, pause, remove a recipient…) and which buttons a
person sees are asked here too (`can_edit`, `buttons_for`…), never retyped in a view.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from marketing.campaigns import policies
from marketing.models import Campaign
from messaging.errors import NotAllowed

State = Campaign.State

TRANSITIONS: dict[str, frozenset[str]] = {
    State.DRAFT: frozenset({State.PENDING_APPROVAL, State.CANCELLED}),
    State.PENDING_APPROVAL: frozenset({State.APPROVED, State.REJECTED, State.DRAFT, State.CANCELLED}),
    State.APPROVED: frozenset({State.SCHEDULED, State.DRAFT, State.CANCELLED}),
    State.SCHEDULED: frozenset({State.SENDING, State.DRAFT, State.CANCELLED}),
    State.SENDING: frozenset({State.PAUSED, State.SENT, State.CANCELLED}),
    State.PAUSED: frozenset({State.SENDING, State.CANCELLED}),
    State.REJECTED: frozenset({State.DRAFT, State.CANCELLED}),
    State.SENT: frozenset(),
    State.CANCELLED: frozenset(),
}

# States whose content, audience and schedule may still be edited (approval-bearing ones
# go back to draft when edited).
EDITABLE = frozenset({State.DRAFT, State.REJECTED, State.PENDING_APPROVAL, State.APPROVED, State.SCHEDULED})
# Invariant 9: in these states a change to anything approved (audience including its
# segments' rules and members, content, merge data, sender, schedule, guardrails) returns
# the campaign to draft, through `actions.withdraw_approval` and nowhere else.
NEEDS_NEW_APPROVAL = frozenset({State.PENDING_APPROVAL, State.APPROVED, State.SCHEDULED})


class CampaignStateError(NotAllowed):
    code = "campaign_state"


class FourEyesViolation(NotAllowed, PermissionDenied):
    """The author of a campaign (or whoever submitted it for review) tried to review it."""

    code = "four_eyes"


def authors(campaign: Campaign) -> set[int]:
    """Who may not approve or reject it: whoever wrote it and whoever asked for this review
    (a colleague who changed it, then submitted it, reviews nothing by approving it)."""
    return {pk for pk in (campaign.created_by_id, campaign.submitted_by_id) if pk is not None}


def can_transition(source: str, target: str) -> bool:
    return target in TRANSITIONS.get(source, frozenset())


def check_transition(campaign: Campaign, target: str) -> None:
    if not can_transition(campaign.state, target):
        raise CampaignStateError(
            _("A campaign that is %(state)s cannot become %(target)s.")
            % {"state": Campaign.State(campaign.state).label.lower(), "target": Campaign.State(target).label.lower()}
        )


# Recipients exist from the start of sending; before that the audience is a dry run.
RECIPIENTS_REMOVABLE_IN = frozenset({State.SENDING, State.PAUSED})


# --- What may happen to a campaign in its state: the actions enforce these, the console,
# the calendar and the API ask them (a button shown is a transition the action allows).
def can_edit(campaign: Campaign) -> bool:
    """Its content, audience and schedule may still be edited."""
    return campaign.state in EDITABLE


def can_submit(campaign: Campaign) -> bool:
    return can_transition(campaign.state, State.PENDING_APPROVAL)


def awaits_review(campaign: Campaign) -> bool:
    """Waiting for an approver (approve or reject)."""
    return campaign.state == State.PENDING_APPROVAL


def can_schedule(campaign: Campaign) -> bool:
    return campaign.state == State.APPROVED


def can_reschedule(campaign: Campaign) -> bool:
    """Moved in the calendar: only a scheduled campaign (it then needs a new approval)."""
    return campaign.state == State.SCHEDULED


def can_pause(campaign: Campaign) -> bool:
    return campaign.state == State.SENDING


def can_resume(campaign: Campaign) -> bool:
    return campaign.state == State.PAUSED


def can_reopen(campaign: Campaign) -> bool:
    """Back to draft, to be edited: a rejected, submitted, approved or scheduled campaign."""
    return can_transition(campaign.state, State.DRAFT)


def can_cancel(campaign: Campaign) -> bool:
    return can_transition(campaign.state, State.CANCELLED)


def can_remove_recipients(campaign: Campaign) -> bool:
    return campaign.state in RECIPIENTS_REMOVABLE_IN


def is_author(campaign: Campaign, user: AbstractBaseUser) -> bool:
    return user.pk in authors(campaign)


def may_review(campaign: Campaign, user: AbstractBaseUser) -> bool:
    """An approver who neither wrote nor submitted it (`approve_campaign` enforces the rule)."""
    return policies.can_approve_campaign(user) and not is_author(campaign, user)


def may_edit(campaign: Campaign, user: AbstractBaseUser) -> bool:
    return policies.can_edit_campaign(user) and can_edit(campaign)


def may_reject(campaign: Campaign, user: AbstractBaseUser) -> bool:
    return may_review(campaign, user) and awaits_review(campaign)


def may_remove_recipients(campaign: Campaign, user: AbstractBaseUser) -> bool:
    return policies.can_send_campaign(user) and can_remove_recipients(campaign)


def may_reschedule(campaign: Campaign, user: AbstractBaseUser) -> bool:
    return policies.can_send_campaign(user) and can_reschedule(campaign)


def buttons_for(campaign: Campaign, user: AbstractBaseUser) -> list[dict]:
    """The buttons a person may press on this campaign now (the action re-checks on POST)."""
    edit, send = policies.can_edit_campaign(user), policies.can_send_campaign(user)
    rules = (
        ("submit", _("Submit for approval"), "primary", edit and can_submit(campaign)),
        ("approve", _("Approve"), "primary", may_review(campaign, user) and awaits_review(campaign)),
        ("schedule", _("Schedule"), "primary", send and can_schedule(campaign)),
        ("pause", _("Pause"), "secondary", send and can_pause(campaign)),
        ("resume", _("Resume"), "primary", send and can_resume(campaign)),
        ("reopen", _("Back to draft"), "secondary", edit and can_reopen(campaign)),
        ("cancel", _("Cancel campaign"), "danger", send and can_cancel(campaign)),
    )
    return [{"name": name, "label": label, "style": style} for name, label, style, shown in rules if shown]
