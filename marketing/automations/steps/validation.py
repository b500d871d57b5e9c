"""The settings each step kind takes, checked before a step is stored or goes live."""

from django.utils.translation import gettext as _

from marketing.automations.clock import parse_clock
from marketing.automations.matching import OPERATORS, number
from marketing.automations.steps.context import CONTEXT_BUILDERS
from marketing.models import AutomationStep
from messaging.errors import InvalidInput
from messaging.models import Channel, Template, Topic

Kind = AutomationStep.Kind


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, fields={"config": [message]})


def clean_step_config(*, kind: str, config: dict | None, position: int | None = None) -> dict:
    """Check one step's settings; returns them cleaned. Raises InvalidInput naming the problem."""
    if kind not in Kind.values:
        raise InvalidInput(_("Unknown step kind “%(kind)s”.") % {"kind": kind}, fields={"kind": [_("Unknown step kind.")]})
    config = dict(config or {})
    if kind == Kind.SEND:
        key = str(config.get("template", "")).strip()
        if not key or not Template.objects.filter(key=key).exists():
            raise _invalid(_("A send step needs the key of an existing template (got “%(key)s”).") % {"key": key})
        channel = config.setdefault("channel", Channel.EMAIL)
        if channel not in Channel.values:
            raise _invalid(_("Unknown channel “%(channel)s”.") % {"channel": channel})
        if config.get("topic") and not Topic.objects.filter(key=config["topic"]).exists():
            raise _invalid(_("No topic with the key “%(key)s”.") % {"key": config["topic"]})
        if config.get("context") and config["context"] not in CONTEXT_BUILDERS:
            raise _invalid(_("Unknown message context “%(name)s”.") % {"name": config["context"]})
        if "once_per" in config and (not isinstance(config["once_per"], str) or not config["once_per"].strip()):
            raise _invalid(_("“once_per” names a property of the event, e.g. appointment_id."))
        config["template"] = key
    elif kind == Kind.WAIT:
        until = config.get("until")
        durations = {unit: config[unit] for unit in ("seconds", "minutes", "hours", "days") if unit in config}
        if until is None and not durations:
            raise _invalid(_("A wait needs a duration (minutes, hours or days) or an “until”."))
        for unit, amount in durations.items():
            if number(amount) is None or number(amount) < 0:
                raise _invalid(_("The wait's %(unit)s must be a positive number.") % {"unit": unit})
        if until is not None:
            if not isinstance(until, dict) or not ({"property", "attribute", "time"} & set(until)):
                raise _invalid(_("“until” names a property, an attribute or a local time."))
            if "time" in until:
                try:
                    parse_clock(until["time"])
                except ValueError:
                    raise _invalid(_("“%(value)s” is not a time like 09:00.") % {"value": until["time"]}) from None
        if config.get("if_past", "continue") not in ("continue", "skip_next"):
            raise _invalid(_("“if_past” is continue or skip_next."))
    elif kind == Kind.CONDITION:
        check = config.get("check")
        if check not in ("consent", "attribute", "property", "tag", "event_since_start"):
            raise _invalid(_("A condition checks consent, attribute, property, tag or event_since_start."))
        if check in ("attribute", "property") and config.get("op", "eq") not in OPERATORS:
            raise _invalid(_("Unknown operator “%(op)s”.") % {"op": config.get("op")})
        otherwise = config.get("else", "exit")
        if otherwise != "exit":
            target = otherwise.get("goto") if isinstance(otherwise, dict) else None
            if not isinstance(target, int) or (position is not None and target <= position + 1):
                raise _invalid(_("“else” is exit or {“goto”: a later step number}."))
    elif kind == Kind.UPDATE:
        if not any(config.get(name) for name in ("set", "unset", "add_tag", "remove_tag")):
            raise _invalid(_("An update sets or unsets attributes, or adds or removes a tag."))
        if "set" in config and not isinstance(config["set"], dict):
            raise _invalid(_("“set” is an object of attribute names and values."))
    return config
