"""Automation actions: create, edit, order steps, activate, pause, create from a preset.

The console, the API and the tasks call these; none re-checks a rule itself.
"""

from datetime import time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from marketing.automations.approval import APPROVED_FIELDS, submit_for_approval, withdraw_approval
from marketing.automations.background import kick_runner
from marketing.automations.clock import parse_clock
from marketing.automations.presets import PRESETS, Preset
from marketing.automations.status import fans_out
from marketing.automations.steps.validation import clean_step_config
from marketing.automations.validation import check_ready, clean_exit_events, clean_trigger
from marketing.models import Automation, AutomationRun, AutomationStep, Segment
from marketing.segments.actions import create_segment
from messaging.audit import diff, record_audit, snapshot
from messaging.errors import InvalidInput, NotAllowed
from messaging.storable import require_storable

EDITABLE = [
    "name",
    "description",
    "trigger_type",
    "trigger",
    "audience",
    "exit_events",
    "reentry",
    "is_transactional",
    "quiet_hours_start",
    "quiet_hours_end",
    "frequency_cap",
    "frequency_window_hours",
    "conversion_event",
    "conversion_window_days",
]


class AutomationStateError(NotAllowed):
    code = "automation_state"


def _apply_fields(automation: Automation, fields: dict[str, Any]) -> None:
    require_storable(**fields)  # the console settings form parses JSON the API parser never sees
    for name, value in fields.items():
        if name not in EDITABLE:
            raise InvalidInput(_("“%(name)s” cannot be set.") % {"name": name}, fields={name: [_("Unknown field.")]})
        if name in ("quiet_hours_start", "quiet_hours_end") and isinstance(value, str):
            value = parse_clock(value) if value else None
        setattr(automation, name, value)
    automation.trigger = clean_trigger(automation.trigger_type, automation.trigger)
    automation.exit_events = clean_exit_events(automation.exit_events)
    if not (automation.name or "").strip():
        raise InvalidInput(_("An automation needs a name."), fields={"name": [_("This field is required.")]})
    if (automation.quiet_hours_start is None) != (automation.quiet_hours_end is None):
        raise InvalidInput(_("Quiet hours need both a start and an end."), fields={"quiet_hours_end": [_("Give both times.")]})


@transaction.atomic
def create_automation(*, actor: AbstractBaseUser | None, name: str, steps: list[dict] | None = None, **fields: Any) -> Automation:
    """A new automation, in draft, with its steps ([{"kind": "send", "config": {...}}, …])."""
    automation = Automation(name=name.strip(), created_by=actor if actor is not None and actor.is_authenticated else None)
    _apply_fields(automation, fields)
    automation.save()
    for position, step in enumerate(steps or []):
        config = clean_step_config(kind=step.get("kind", ""), config=step.get("config"), position=position)
        AutomationStep.objects.create(automation=automation, position=position, kind=step["kind"], config=config)
    record_audit(actor=actor, verb="created", target=automation)
    return automation


@transaction.atomic
def update_automation(*, actor: AbstractBaseUser | None, automation: Automation, **fields: Any) -> Automation:
    """Change settings. On a fan-out automation, a change to who it reaches (APPROVED_FIELDS)
    withdraws its approval: an active one goes back to waiting for approval."""
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    before = snapshot(automation, EDITABLE)
    _apply_fields(automation, fields)
    automation.save()
    changes = diff(before, snapshot(automation, EDITABLE))
    record_audit(actor=actor, verb="changed", target=automation, changes=changes)
    if set(changes) & APPROVED_FIELDS:
        withdraw_approval(
            actor=actor, automation=automation, reason=_("settings changed: %(fields)s") % {"fields": ", ".join(sorted(changes))}
        )
    return automation


def _steps_changed(actor: AbstractBaseUser | None, automation: Automation) -> None:
    """Every step edit of a fan-out automation needs a new approval: what is sent, to whom
    (a condition, an exit) and in which order is what the approver looked at."""
    withdraw_approval(actor=actor, automation=automation, reason=_("steps changed"))


def _renumber(automation: Automation) -> None:
    for position, step in enumerate(automation.steps.order_by("position", "id")):
        if step.position != position:
            AutomationStep.objects.filter(pk=step.pk).update(position=position)


def _shift_references(automation: Automation, *, after: int, by: int) -> None:
    """Steps after position `after` moved by `by`: runs in flight and the conditions' "go to"
    follow them, so nobody repeats or skips a step because another was added or removed.

    Both point at a place between steps (a run at n has done the steps before n), so a place
    right at an inserted step (n == after) stays: the new step is ahead of it and is run."""
    runs = AutomationRun.objects.filter(automation=automation, status=AutomationRun.Status.ACTIVE, next_step_index__gt=after)
    runs.update(next_step_index=F("next_step_index") + by)
    for condition in automation.steps.filter(kind=AutomationStep.Kind.CONDITION):
        otherwise = condition.config.get("else")
        if isinstance(otherwise, dict) and isinstance(otherwise.get("goto"), int) and otherwise["goto"] - 1 > after:
            condition.config = {**condition.config, "else": {**otherwise, "goto": otherwise["goto"] + by}}
            condition.save(update_fields=["config"])


@transaction.atomic
def add_step(
    *, actor: AbstractBaseUser | None, automation: Automation, kind: str, config: dict | None = None, position: int | None = None
) -> AutomationStep:
    """Insert a step (at the end by default). Runs in flight keep their place in the flow."""
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    count = automation.steps.count()
    position = count if position is None else max(0, min(position, count))
    config = clean_step_config(kind=kind, config=config, position=position)
    automation.steps.filter(position__gte=position).update(position=F("position") + 1)
    _shift_references(automation, after=position, by=1)
    step = AutomationStep.objects.create(automation=automation, position=position, kind=kind, config=config)
    record_audit(actor=actor, verb="step added", target=automation, changes={"step": {"before": None, "after": f"{position + 1}. {kind}"}})
    _steps_changed(actor, automation)
    return step


@transaction.atomic
def update_step(*, actor: AbstractBaseUser | None, step: AutomationStep, config: dict) -> AutomationStep:
    automation = Automation.objects.select_for_update().get(pk=step.automation_id)
    step = AutomationStep.objects.select_for_update().get(pk=step.pk)
    before = step.config
    step.config = clean_step_config(kind=step.kind, config=config, position=step.position)
    if step.config == before:
        return step
    step.save(update_fields=["config"])
    record_audit(actor=actor, verb="step changed", target=automation, changes={"config": {"before": before, "after": step.config}})
    _steps_changed(actor, automation)
    return step


@transaction.atomic
def remove_step(*, actor: AbstractBaseUser | None, step: AutomationStep) -> None:
    """Remove a step; runs waiting for it go on with the step after it."""
    automation = Automation.objects.select_for_update().get(pk=step.automation_id)
    step = AutomationStep.objects.get(pk=step.pk)
    label, position = str(step), step.position
    step.delete()
    _renumber(automation)
    _shift_references(automation, after=position, by=-1)
    record_audit(actor=actor, verb="step removed", target=automation, changes={"step": {"before": label, "after": None}})
    _steps_changed(actor, automation)


@transaction.atomic
def move_step(*, actor: AbstractBaseUser | None, step: AutomationStep, offset: int) -> AutomationStep:
    """Move a step up (offset -1) or down (+1) by swapping it with its neighbour. Refused while
    runs sit between the two (they did the first and would do it again or skip the second)."""
    automation = Automation.objects.select_for_update().get(pk=step.automation_id)
    ordered = list(automation.steps.order_by("position", "id"))
    index = next(i for i, s in enumerate(ordered) if s.pk == step.pk)
    target = index + offset
    if not 0 <= target < len(ordered):
        return ordered[index]
    between = AutomationRun.objects.filter(
        automation=automation, status=AutomationRun.Status.ACTIVE, next_step_index=max(index, target)
    ).count()
    if between:
        raise AutomationStateError(
            ngettext(
                "%(count)s run has done step %(first)s and waits for step %(second)s: swapping them now would make it repeat "
                "or skip one. Try again once it has moved on.",
                "%(count)s runs have done step %(first)s and wait for step %(second)s: swapping them now would make them repeat "
                "or skip one. Try again once they have moved on.",
                between,
            )
            % {"count": between, "first": min(index, target) + 1, "second": max(index, target) + 1}
        )
    ordered[index], ordered[target] = ordered[target], ordered[index]
    for position, each in enumerate(ordered):
        AutomationStep.objects.filter(pk=each.pk).update(position=position)
        if each.kind == AutomationStep.Kind.CONDITION:
            clean_step_config(kind=each.kind, config=each.config, position=position)  # its "go to" must stay ahead of it
    record_audit(actor=actor, verb="step moved", target=automation, changes={"step": {"before": index + 1, "after": target + 1}})
    _steps_changed(actor, automation)
    return AutomationStep.objects.get(pk=step.pk)


@transaction.atomic
def replace_steps(*, actor: AbstractBaseUser | None, automation: Automation, steps: list[dict]) -> Automation:
    """Replace every step at once (the API's PATCH). Refused while the automation is active:
    runs in flight point at step numbers."""
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    if automation.state == Automation.State.ACTIVE:
        raise AutomationStateError(_("Pause the automation before replacing its steps."))
    cleaned = [
        (step.get("kind", ""), clean_step_config(kind=step.get("kind", ""), config=step.get("config"), position=position))
        for position, step in enumerate(steps)
    ]
    before = [f"{s.kind}" for s in automation.steps.order_by("position", "id")]
    automation.steps.all().delete()
    AutomationStep.objects.bulk_create(
        [
            AutomationStep(automation=automation, position=position, kind=kind, config=config)
            for position, (kind, config) in enumerate(cleaned)
        ]
    )
    record_audit(
        actor=actor, verb="steps replaced", target=automation, changes={"steps": {"before": before, "after": [k for k, _c in cleaned]}}
    )
    _steps_changed(actor, automation)
    return automation


@transaction.atomic
def activate_automation(*, actor: AbstractBaseUser | None, automation: Automation) -> Automation:
    """Go live. An automation that fans out to many contacts (see `status.fans_out`) is
    submitted for approval instead, unless it is paused with its approval still standing."""
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    if automation.state == Automation.State.ACTIVE:
        raise AutomationStateError(_("This automation is already active."))
    if automation.state == Automation.State.PENDING_APPROVAL:
        raise AutomationStateError(_("This automation is already waiting for approval."))
    check_ready(automation)
    if fans_out(automation) and automation.approved_at is None:
        return submit_for_approval(actor=actor, automation=automation)
    before = automation.state
    automation.state = Automation.State.ACTIVE
    if before == Automation.State.DRAFT or automation.activated_at is None:
        automation.activated_at = timezone.now()
    automation.save(update_fields=["state", "activated_at", "updated_at"])
    record_audit(actor=actor, verb="activated", target=automation, changes={"state": {"before": before, "after": automation.state}})
    if AutomationRun.objects.filter(automation=automation, status=AutomationRun.Status.ACTIVE).exists():
        kick_runner()  # paused runs that came due continue now
    return automation


@transaction.atomic
def pause_automation(*, actor: AbstractBaseUser | None, automation: Automation) -> Automation:
    """Stop starting runs and executing steps; runs in flight resume where they were. One
    waiting for approval is withdrawn (paused, or a draft again if it never ran)."""
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    before = automation.state
    if before not in (Automation.State.ACTIVE, Automation.State.PENDING_APPROVAL):
        raise AutomationStateError(_("Only an active automation can be paused."))
    waiting = before == Automation.State.PENDING_APPROVAL
    automation.state = Automation.State.DRAFT if waiting and automation.activated_at is None else Automation.State.PAUSED
    automation.save(update_fields=["state", "updated_at"])
    record_audit(actor=actor, verb="paused", target=automation, changes={"state": {"before": before, "after": automation.state}})
    return automation


@transaction.atomic
def delete_automation(*, actor: AbstractBaseUser | None, automation: Automation) -> None:
    automation = Automation.objects.select_for_update().get(pk=automation.pk)
    if automation.state == Automation.State.ACTIVE:
        raise AutomationStateError(_("Pause the automation before deleting it."))
    record_audit(actor=actor, verb="deleted", target=automation)
    automation.delete()


def _quiet(value: str | None) -> time | None:
    return parse_clock(value) if value else None


@transaction.atomic
def create_automation_from_preset(*, actor: AbstractBaseUser | None, key: str, name: str = "") -> Automation:
    """One click: a draft copy of a preset, fully editable afterwards."""
    preset: Preset | None = PRESETS.get(key)
    if preset is None:
        raise InvalidInput(_("Unknown preset “%(key)s”.") % {"key": key}, fields={"preset": [_("Unknown preset.")]})
    audience = None
    if preset.audience_rules is not None:
        audience = Segment.objects.filter(name=str(preset.audience_name)).first()
        if audience is None:
            audience = create_segment(
                actor=actor,
                name=str(preset.audience_name),
                description=str(preset.description),
                kind="dynamic",
                rules=preset.audience_rules,
            )
    automation = create_automation(
        actor=actor,
        name=name or str(preset.name),
        description=str(preset.description),
        trigger_type=preset.trigger_type,
        trigger=dict(preset.trigger),
        audience=audience,
        exit_events=list(preset.exit_events),
        reentry=preset.reentry,
        is_transactional=preset.transactional,
        quiet_hours_start=_quiet(preset.quiet_hours[0]) if preset.quiet_hours else None,
        quiet_hours_end=_quiet(preset.quiet_hours[1]) if preset.quiet_hours else None,
        frequency_cap=preset.frequency_cap,
        steps=[{"kind": kind, "config": dict(config)} for kind, config in preset.steps],
    )
    Automation.objects.filter(pk=automation.pk).update(preset=key)
    automation.preset = key
    return automation
