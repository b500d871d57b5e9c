"""Four eyes for automations that can message many contacts at once (design invariant 9).

An automation *fans out* when one trigger can start runs for many contacts: a schedule, a
date attribute or a segment entry (each scans a whole audience), or an event trigger marked
`fan_out` (a broadcast event starts a run for every audience member). An event trigger
without `fan_out` starts one run for the contact whose event it is and keeps today's
behaviour: it activates directly.

A fan-out automation goes live only through a second person: activating it submits it
(state "waiting for approval", nothing runs), and someone else with the approve
permission approves it (it becomes active) or rejects it. Whatever was approved is what
runs: a change to its audience (trigger, audience segment, re-entry, exits, consent,
frequency cap), to its steps, or to the rules or members of a segment it uses withdraws
the approval. An active automation then goes back to waiting for approval rather than
refusing the change: the change may come from another screen (the segment builder) by
someone who does not know the automation uses that segment, and refusing it would only
make them pause, edit and re-activate, which needs the same approval. Meanwhile nothing
runs: the scans, the event triggers and the runner only touch live automations
(`marketing.automations.status.live_automations`), so no message reaches the widened audience before someone looks.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from marketing import policies
from marketing.automations.background import kick_runner
from marketing.automations.status import approved_content_of, fans_out
from marketing.automations.validation import check_ready
from marketing.models import Automation, AutomationRun, AutomationStep, Segment
from marketing.review import saw_this_submission
from messaging.audit import record_audit
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import Template

State = Automation.State

# Settings an approval covers: who enters, how often, whether consent applies.
APPROVED_FIELDS = frozenset(
    {"trigger_type", "trigger", "audience", "reentry", "is_transactional", "exit_events", "frequency_cap", "frequency_window_hours"}
)


class AutomationApprovalError(NotAllowed):
    code = "automation_approval"


class AutomationFourEyesViolation(NotAllowed, PermissionDenied):
    """The author of an automation (or of the change waiting for review) tried to approve it."""

    code = "four_eyes"


def _user(actor: AbstractBaseUser | None):
    return actor if actor is not None and actor.is_authenticated else None


# --- who reviews ----------------------------------------------------------------------
def waiting_for_approval() -> QuerySet[Automation]:
    return Automation.objects.filter(state=State.PENDING_APPROVAL).select_related("created_by", "submitted_by", "audience")


def authors(automation: Automation) -> set[int]:
    """Who may not approve it: whoever wrote it, whoever asked for this approval, and whoever
    wrote the content its send steps would send now (a new template version put live sends
    it back for approval with nobody asking, see `hold_for_changed_content`)."""
    people = {pk for pk in (automation.created_by_id, automation.submitted_by_id) if pk is not None}
    keys = {step.config.get("template") for step in automation.steps.filter(kind=AutomationStep.Kind.SEND)} - {None}
    writers = Template.objects.filter(key__in=keys, active_version__author__isnull=False).values_list(
        "active_version__author_id", flat=True
    )
    return people | set(writers)


def can_review(user: AbstractBaseUser, automation: Automation) -> bool:
    """For the console: show the approve / reject buttons to this user."""
    return (
        automation.state == State.PENDING_APPROVAL
        and user.is_authenticated
        and policies.can_approve_automations(user)
        and user.pk not in authors(automation)
    )


# --- the content an approval covers -------------------------------------------------------
@transaction.atomic
def hold_for_changed_content(*, automation: Automation, key: str) -> None:
    """The runner met a template edited after the approval: back to waiting, nothing sent."""
    automation = _lock(automation)
    withdraw_approval(actor=None, automation=automation, reason=_("template “%(key)s” changed after approval") % {"key": key})


# --- transitions (the caller holds the automation's row lock) ---------------------------
def _audit_state(actor, automation: Automation, verb: str, before: str, **extra) -> None:
    record_audit(actor=actor, verb=verb, target=automation, changes={"state": {"before": before, "after": automation.state}, **extra})


def submit_for_approval(*, actor: AbstractBaseUser | None, automation: Automation) -> Automation:
    """Activation of a fan-out automation: it waits for a second person; nothing runs."""
    before = automation.state
    automation.state = State.PENDING_APPROVAL
    automation.submitted_by, automation.submitted_at = _user(actor), timezone.now()
    automation.approved_by = automation.approved_at = None
    automation.rejection_reason = ""
    automation.save(update_fields=["state", "submitted_by", "submitted_at", "approved_by", "approved_at", "rejection_reason", "updated_at"])
    _audit_state(actor, automation, "submitted", before)
    return automation


def withdraw_approval(*, actor: AbstractBaseUser | None, automation: Automation, reason: str) -> bool:
    """What was approved changed: an active fan-out automation goes back to waiting for
    approval (the person who changed it becomes the one asking), a paused or waiting one
    loses its approval. Returns True when something changed."""
    holds = automation.state in (State.ACTIVE, State.PENDING_APPROVAL)
    if not fans_out(automation) or not (holds or automation.approved_at is not None):
        return False
    before = automation.state
    if holds:
        automation.state = State.PENDING_APPROVAL
        automation.submitted_by, automation.submitted_at = _user(actor), timezone.now()
    automation.approved_by = automation.approved_at = None
    automation.approved_content = {}
    automation.save(update_fields=["state", "submitted_by", "submitted_at", "approved_by", "approved_at", "approved_content", "updated_at"])
    _audit_state(actor, automation, "approval withdrawn", before, reason=reason)
    return True


# --- review actions -----------------------------------------------------------------------
def _lock(automation: Automation) -> Automation:
    return Automation.objects.select_for_update().get(pk=automation.pk)


def _check_reviewer(actor: AbstractBaseUser | None, automation: Automation) -> None:
    if automation.state != State.PENDING_APPROVAL:
        raise AutomationApprovalError(_("Only an automation waiting for approval can be approved or rejected."))
    if _user(actor) is None or not policies.can_approve_automations(actor):
        raise AutomationFourEyesViolation(_("Only someone with the approver's permission can review an automation."))
    if actor.pk in authors(automation):
        raise AutomationFourEyesViolation(_("You cannot review an automation you wrote or changed: someone else must."))


@transaction.atomic
def approve_automation(*, actor: AbstractBaseUser, automation: Automation, seen=None) -> Automation:
    """Approve a fan-out automation waiting for review: it goes live. The author (and the
    person whose change is waiting) may never approve it. `seen` names the submission the
    approver looked at (marketing.review): a change while it waited makes a new one."""
    automation = _lock(automation)
    _check_reviewer(actor, automation)
    if not saw_this_submission(automation.submitted_at, seen):
        raise AutomationApprovalError(_("This automation changed after you opened it: review it again before approving."))
    check_ready(automation)
    before = automation.state
    now = timezone.now()
    automation.state = State.ACTIVE
    automation.approved_by, automation.approved_at = actor, now
    automation.approved_content = approved_content_of(automation)
    automation.activated_at = automation.activated_at or now
    automation.save(update_fields=["state", "approved_by", "approved_at", "approved_content", "activated_at", "updated_at"])
    _audit_state(actor, automation, "approved", before)
    if AutomationRun.objects.filter(automation=automation, status=AutomationRun.Status.ACTIVE).exists():
        kick_runner()  # runs held while it waited continue now
    return automation


@transaction.atomic
def reject_automation(*, actor: AbstractBaseUser, automation: Automation, reason: str) -> Automation:
    """Send it back with a reason: paused when it ran before, else a draft."""
    automation = _lock(automation)
    _check_reviewer(actor, automation)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Say why the automation is rejected."), fields={"reason": [_("This field is required.")]})
    before = automation.state
    automation.state = State.PAUSED if automation.activated_at else State.DRAFT
    automation.rejection_reason = reason[:2000]
    automation.save(update_fields=["state", "rejection_reason", "updated_at"])
    _audit_state(actor, automation, "rejected", before, reason=reason[:2000])
    return automation


# --- segments -----------------------------------------------------------------------------
def automations_using(segment: Segment) -> QuerySet[Automation]:
    """Fan-out automations that read this segment (as their audience or entry segment) and
    hold or wait for an approval."""
    uses = Q(audience=segment) | Q(trigger__segment=segment.pk) | Q(trigger__segment=str(segment.pk))
    holds = Q(state__in=[State.ACTIVE, State.PENDING_APPROVAL]) | Q(approved_at__isnull=False)
    return Automation.objects.filter(uses, holds)


def segment_audience_edited(*, segment: Segment, actor: AbstractBaseUser | None, change: str) -> int:
    """A person changed who is in `segment` (its rules, members added): every fan-out
    automation using it needs a new approval. The segment actions reach this through
    `segment_audience_changed`, in the edit's transaction. Returns how many were affected."""
    affected = 0
    for automation in automations_using(segment).select_for_update().order_by("pk"):  # withdraw_approval skips single-contact ones
        reason = _("segment “%(segment)s”: %(change)s") % {"segment": segment.name, "change": change}
        affected += withdraw_approval(actor=actor, automation=automation, reason=reason)
    return affected


def on_segment_audience_changed(sender, *, segment: Segment, actor: AbstractBaseUser | None, change: str, **kwargs) -> int:
    """The `marketing.segments.signals.segment_audience_changed` receiver (connected in
    `marketing.wiring`); runs in the segment edit's transaction."""
    return segment_audience_edited(segment=segment, actor=actor, change=change)
