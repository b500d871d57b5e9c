"""Whether an automation's settings make sense: its trigger, its exit events, and, before
it goes live, its steps. The actions call these before saving; the approval calls
`check_ready` again before an automation it approves goes live."""

from typing import Any

from django.utils.translation import gettext as _

from marketing.automations.clock import parse_clock
from marketing.automations.steps.validation import clean_step_config
from marketing.models import Automation, Segment
from messaging.errors import InvalidInput
from messaging.models import SignupForm


def _form_problem(slug: Any) -> str | None:
    """A form-confirmed trigger names an existing sign-up form by its address, or none (any form)."""
    if slug in (None, ""):
        return None
    if not isinstance(slug, str) or not SignupForm.objects.filter(slug=slug).exists():
        return _("A form-confirmed trigger names an existing sign-up form; there is none at the address “%(form)s”.") % {"form": slug}
    return None


def clean_trigger(trigger_type: str, trigger: Any) -> dict:
    if trigger_type not in Automation.Trigger.values:
        raise InvalidInput(_("Unknown trigger “%(kind)s”.") % {"kind": trigger_type}, fields={"trigger_type": [_("Unknown trigger.")]})
    if not isinstance(trigger, dict):
        raise InvalidInput(_("The trigger settings must be an object."), fields={"trigger": [_("Must be an object.")]})
    if "fan_out" in trigger:  # a JSON boolean, so the live-automation query reads it like Python does
        trigger = {**trigger, "fan_out": bool(trigger["fan_out"])}
    problem = None
    if trigger_type == Automation.Trigger.EVENT and not (trigger.get("events") or trigger.get("event")):
        problem = _("An event trigger names at least one event.")
    elif trigger_type == Automation.Trigger.DATE and not trigger.get("attribute"):
        problem = _("A date trigger names the contact attribute holding the date.")
    elif trigger_type == Automation.Trigger.SEGMENT_ENTRY and not Segment.objects.filter(pk=trigger.get("segment") or 0).exists():
        problem = _("A segment-entry trigger names an existing segment.")
    elif trigger_type == Automation.Trigger.FORM_CONFIRMED:
        problem = _form_problem(trigger.get("form"))
    elif trigger_type == Automation.Trigger.SCHEDULE:
        weekday = trigger.get("weekday")
        if weekday not in (None, "") and not (isinstance(weekday, int) and 0 <= weekday <= 6):
            problem = _("The weekday is 0 (Monday) to 6 (Sunday).")
    for key in ("time", "at"):
        if trigger.get(key):
            try:
                parse_clock(trigger[key])
            except ValueError:
                problem = _("“%(value)s” is not a time like 09:00.") % {"value": trigger[key]}
    if problem:
        raise InvalidInput(problem, fields={"trigger": [problem]})
    return trigger


def clean_exit_events(exit_events: Any) -> list[dict]:
    if not isinstance(exit_events, list) or not all(isinstance(rule, dict) and rule.get("event") for rule in exit_events):
        message = _('Exit events are a list like [{"event": "order_paid", "match": "order_id"}].')
        raise InvalidInput(message, fields={"exit_events": [message]})
    return exit_events


def check_ready(automation: Automation) -> None:
    """An automation can go live with at least one step and steps that still make sense."""
    steps = list(automation.steps.order_by("position", "id"))
    if not steps:
        raise InvalidInput(_("Add at least one step before activating."), fields={"steps": [_("No steps.")]})
    for position, step in enumerate(steps):
        try:
            clean_step_config(kind=step.kind, config=step.config, position=position)
        except InvalidInput as error:
            raise InvalidInput(_("Step %(n)s: %(error)s") % {"n": position + 1, "error": error}, fields={"steps": [str(error)]}) from None
    clean_trigger(automation.trigger_type, automation.trigger)
