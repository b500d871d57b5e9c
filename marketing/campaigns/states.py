"""The campaign state machine, as one explicit table of allowed transitions.

    draft → pending_approval → approved → scheduled → sending ⇄ paused → sent
    pending_approval → rejected → draft;   edits after submission → draft
    any state before sent → cancelled

Every action calls `check_transition` after locking the row, so a transition that is not
in the table is refused with the same error whoever asks (console, API, task).
"""

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

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
