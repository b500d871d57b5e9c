"""Automation triggers, exits and steps in words, for people: the list, the flow page, the
approval queue, the preset gallery and the calendar show these, never the stored JSON.

    describe_trigger("event", {"events": ["order_placed"]})  → When the event “order_placed” happens
    describe_trigger("schedule", {"weekday": 0, "time": "09:00"})
        → Every Monday at 09:00, in each contact's time zone
    describe_exit({"event": "appointment_cancelled", "match": "appointment_id"})
        → When the event “appointment_cancelled” happens with the same “appointment_id”
"""

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from marketing.automations.matching import number
from marketing.models import Automation, AutomationStep, Segment
from messaging.consent_text import CHANNEL_WORDS
from messaging.models import SignupForm, Topic

Trigger = Automation.Trigger
Kind = AutomationStep.Kind

WEEKDAYS = (
    gettext_lazy("Monday"),
    gettext_lazy("Tuesday"),
    gettext_lazy("Wednesday"),
    gettext_lazy("Thursday"),
    gettext_lazy("Friday"),
    gettext_lazy("Saturday"),
    gettext_lazy("Sunday"),
)

# How a property filter's operator reads in a sentence ("if “total” is at least 10").
OPERATOR_LABELS = {
    "eq": gettext_lazy("is"),
    "ne": gettext_lazy("is not"),
    "gt": gettext_lazy("is more than"),
    "gte": gettext_lazy("is at least"),
    "lt": gettext_lazy("is less than"),
    "lte": gettext_lazy("is at most"),
    "contains": gettext_lazy("contains"),
    "exists": gettext_lazy("is set"),
    "not_exists": gettext_lazy("is not set"),
    "in": gettext_lazy("is one of"),
}
NO_VALUE_OPERATORS = ("exists", "not_exists")
ANY_EVENT = "*"


def _quoted(name: Any) -> str:
    return _("“%(name)s”") % {"name": name}


def _names(names: list) -> str:
    return ", ".join(_quoted(name) for name in names)


def trigger_events(trigger: Mapping) -> list[str]:
    """The event names an event trigger listens to (the old single "event" key too)."""
    names = trigger.get("events") or ([trigger["event"]] if trigger.get("event") else [])
    return [str(name) for name in names] if isinstance(names, list) else [str(names)]


def _clock(value: Any, default: str = "09:00") -> str:
    text = str(value or default)
    hours, _sep, minutes = text.partition(":")
    try:
        return f"{int(hours):02d}:{int(minutes or 0):02d}"
    except ValueError:
        return text


def describe_filter(rule: Mapping) -> str:
    """“total” is at least 10"""
    op = rule.get("op", "eq")
    words = str(OPERATOR_LABELS.get(op, op))
    if op in NO_VALUE_OPERATORS:
        return f"{_quoted(rule.get('property', ''))} {words}"
    value = rule.get("value")
    shown = ", ".join(map(str, value)) if isinstance(value, list) else value
    return f"{_quoted(rule.get('property', ''))} {words} {shown}"


def duration(minutes: float) -> str:
    """90 → 90 minutes, 120 → 2 hours, 2880 → 2 days."""
    minutes = int(abs(minutes))
    if minutes and minutes % 1440 == 0:
        n = minutes // 1440
        return ngettext("%(n)s day", "%(n)s days", n) % {"n": n}
    if minutes and minutes % 60 == 0:
        n = minutes // 60
        return ngettext("%(n)s hour", "%(n)s hours", n) % {"n": n}
    return ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}


def _event_trigger(trigger: Mapping) -> str:
    names = trigger_events(trigger)
    if ANY_EVENT in names:
        sentence = _("Whenever the contact does anything (any event)")
    elif len(names) == 1:
        sentence = _("When the event %(name)s happens") % {"name": _quoted(names[0])}
    elif names:
        sentence = _("When one of the events %(names)s happens") % {"names": _names(names)}
    else:
        sentence = _("When an event happens (none chosen yet)")
    filters = [describe_filter(rule) for rule in trigger.get("filters") or [] if isinstance(rule, Mapping)]
    if filters:
        sentence += ", " + _("if %(conditions)s") % {"conditions": _(" and ").join(filters)}
    if trigger.get("fan_out"):
        sentence += ", " + _("for every member of the audience")
    return sentence


def _schedule_trigger(trigger: Mapping) -> str:
    at = _clock(trigger.get("time"))
    weekday = trigger.get("weekday")
    if weekday in (None, ""):
        return _("Every day at %(time)s, in each contact's time zone") % {"time": at}
    try:
        day = WEEKDAYS[int(weekday)]
    except (TypeError, ValueError, IndexError):
        day = weekday
    return _("Every %(weekday)s at %(time)s, in each contact's time zone") % {"weekday": day, "time": at}


def _date_trigger(trigger: Mapping) -> str:
    attribute = str(trigger.get("attribute") or "")
    yearly = bool(trigger.get("yearly"))
    if attribute == "birthday":
        when = _("each contact's birthday")
    elif yearly:
        when = _("the yearly anniversary of the date in the contact's attribute %(name)s") % {"name": _quoted(attribute)}
    else:
        when = _("the date in the contact's attribute %(name)s") % {"name": _quoted(attribute)}
    at = _clock(trigger.get("at"))
    try:
        offset = float(trigger.get("offset_minutes") or 0)
    except (TypeError, ValueError):
        offset = 0
    if offset < 0:
        return _("%(duration)s before %(when)s, at %(time)s") % {"duration": duration(offset), "when": when, "time": at}
    if offset > 0:
        return _("%(duration)s after %(when)s, at %(time)s") % {"duration": duration(offset), "when": when, "time": at}
    return _("On %(when)s, at %(time)s") % {"when": when, "time": at}


def _segment_trigger(trigger: Mapping, segment_name: str | None) -> str:
    if segment_name is None:
        segment_id = trigger.get("segment")
        segment_name = Segment.objects.filter(pk=segment_id).values_list("name", flat=True).first() if segment_id else None
    if not segment_name:
        return _("When a contact enters the audience segment")
    return _("When a contact enters the segment %(name)s") % {"name": _quoted(segment_name)}


def _form_trigger(trigger: Mapping) -> str:
    slug = trigger.get("form") or ""
    if not slug:
        return _("When someone confirms a sign-up on any form")
    name = SignupForm.objects.filter(slug=slug).values_list("name", flat=True).first()
    return _("When someone confirms a sign-up on the form %(name)s") % {"name": _quoted(name or slug)}


def describe_trigger(trigger_type: str, trigger: Mapping | None, *, segment_name: str | None = None) -> str:
    """One sentence for a trigger. `segment_name` saves the query for a segment-entry trigger."""
    trigger = trigger if isinstance(trigger, Mapping) else {}
    if trigger_type == Trigger.EVENT:
        return _event_trigger(trigger)
    if trigger_type == Trigger.SCHEDULE:
        return _schedule_trigger(trigger)
    if trigger_type == Trigger.DATE:
        return _date_trigger(trigger)
    if trigger_type == Trigger.SEGMENT_ENTRY:
        return _segment_trigger(trigger, segment_name)
    if trigger_type == Trigger.FORM_CONFIRMED:
        return _form_trigger(trigger)
    return _("Unknown trigger")


def describe_automation_trigger(automation: Automation) -> str:
    """The trigger of a saved automation; reads `entry_segment_name` when the list annotated it."""
    annotated = hasattr(automation, "entry_segment_name")
    segment_name = (automation.entry_segment_name or "") if annotated else None
    return describe_trigger(automation.trigger_type, automation.trigger, segment_name=segment_name)


def describe_exit(rule: Mapping) -> str:
    event = rule.get("event", "")
    if event == ANY_EVENT:
        sentence = _("When the contact does anything else (any event)")
    else:
        sentence = _("When the event %(name)s happens") % {"name": _quoted(event)}
    if rule.get("match"):
        sentence += " " + _("with the same %(property)s") % {"property": _quoted(rule["match"])}
    return sentence


def describe_exits(exit_events: Any) -> list[str]:
    return [describe_exit(rule) for rule in exit_events or [] if isinstance(rule, Mapping)]


# --- steps ------------------------------------------------------------------------------
def _describe_condition(config: dict) -> str:
    check = config.get("check")
    if check == "consent":
        what = _("the contact accepts %(topic)s by %(channel)s") % {
            "topic": _quoted(config.get("topic", "")),
            "channel": config.get("channel", "email"),
        }
    elif check in ("attribute", "property"):
        op = config.get("op", "eq")
        label = _("the attribute %(name)s") if check == "attribute" else _("the event property %(name)s")
        what = f"{label % {'name': _quoted(config.get('name', ''))}} {OPERATOR_LABELS.get(op, op)}"
        if op not in NO_VALUE_OPERATORS:
            what += f" {config.get('value', '')}"
    elif check == "tag":
        what = _("the contact is tagged %(tag)s") % {"tag": _quoted(config.get("tag", ""))}
    elif check == "event_since_start":
        what = _("the event %(name)s happened since the run started") % {"name": _quoted(config.get("event", ""))}
    else:
        what = str(check)
    otherwise = config.get("else", "exit")
    if otherwise == "exit":
        return _("If %(condition)s; otherwise exit") % {"condition": what}
    return _("If %(condition)s; otherwise go to step %(step)s") % {"condition": what, "step": otherwise.get("goto")}


def _describe_update(config: dict) -> str:
    parts = [_("set %(name)s to %(value)s") % {"name": _quoted(name), "value": value} for name, value in (config.get("set") or {}).items()]
    parts += [_("clear %(name)s") % {"name": _quoted(name)} for name in config.get("unset") or []]
    if config.get("add_tag"):
        parts.append(_("add the tag %(tag)s") % {"tag": _quoted(config["add_tag"])})
    if config.get("remove_tag"):
        parts.append(_("remove the tag %(tag)s") % {"tag": _quoted(config["remove_tag"])})
    return _("Update the contact: %(changes)s") % {"changes": ", ".join(parts)}


def _describe_consent(kind: str, config: dict) -> str:
    topic = config.get("topic", "")
    name = Topic.objects.filter(key=topic).values_list("name", flat=True).first() or topic
    channel = config.get("channel") or "email"
    values = {"topic": _quoted(name), "channel": CHANNEL_WORDS.get(channel, channel)}
    if kind == Kind.SUBSCRIBE:
        return _("Subscribe the contact to %(topic)s %(channel)s") % values
    return _("Unsubscribe the contact from %(topic)s %(channel)s") % values


def describe_step(kind: str, config: dict) -> str:
    """One line for the console's step list."""
    if kind == Kind.SEND:
        return _("Send “%(template)s” by %(channel)s") % {"template": config.get("template"), "channel": config.get("channel", "email")}
    if kind == Kind.WAIT:
        until = config.get("until")
        if until:
            if "time" in until:
                return _("Wait until %(time)s local time") % {"time": until["time"]}
            minutes = float(until.get("offset_minutes", 0))
            return _("Wait until %(name)s %(sign)s %(hours)s h") % {
                "name": _quoted(until.get("property") or until.get("attribute")),
                "sign": "−" if minutes < 0 else "+",
                "hours": f"{abs(minutes) / 60:g}",
            }
        units = {
            "days": lambda n: ngettext("%(n)s day", "%(n)s days", n),
            "hours": lambda n: ngettext("%(n)s hour", "%(n)s hours", n),
            "minutes": lambda n: ngettext("%(n)s minute", "%(n)s minutes", n),
            "seconds": lambda n: ngettext("%(n)s second", "%(n)s seconds", n),
        }
        amounts = {u: number(config[u]) or 0.0 for u in ("days", "hours", "minutes", "seconds") if u in config}
        parts = [units[u](int(n) if n.is_integer() else 2) % {"n": f"{n:g}"} for u, n in amounts.items()]
        return _("Wait %(duration)s") % {"duration": " ".join(parts)}
    if kind == Kind.CONDITION:
        return _describe_condition(config)
    if kind == Kind.UPDATE:
        return _describe_update(config)
    if kind in (Kind.SUBSCRIBE, Kind.UNSUBSCRIBE):
        return _describe_consent(kind, config)
    return _("Exit")
