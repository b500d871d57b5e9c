"""The trigger and exits of an automation as a form with choices, for the console.

The stored shape stays the JSON the API reads and writes (see Automation.trigger and
exit_events); this module only translates between it and form fields. Saving goes through
`update_automation`, which holds the rules (and withdraws a fan-out automation's approval).

`trigger_data` turns what is stored into form data and `build_trigger` turns cleaned form
data back: `build_trigger(trigger_data(stored))` is the stored trigger in the form's own
words, so an unchanged form is recognised as unchanged and asks for no new approval.
"""

from datetime import time
from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.widgets import (
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSelectMultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextInputWidget,
    UnfoldBooleanSwitchWidget,
)

from marketing.automations.describe import ANY_EVENT, OPERATOR_LABELS, WEEKDAYS, trigger_events
from marketing.automations.queries import known_date_attributes, known_event_names
from marketing.events import EVENT_NAME_MAX
from marketing.models import Automation, Segment
from messaging.models import SignupForm

Trigger = Automation.Trigger
NUMBER_OPERATORS = ("gt", "gte", "lt", "lte")
UNITS = (("minutes", gettext_lazy("minutes")), ("hours", gettext_lazy("hours")), ("days", gettext_lazy("days")))
MINUTES = {"minutes": 1, "hours": 60, "days": 1440}
DIRECTIONS = (
    ("on", gettext_lazy("on the date itself")),
    ("before", gettext_lazy("before the date")),
    ("after", gettext_lazy("after the date")),
)
EVERY_DAY = ""


def valid_name(name: str) -> bool:
    """An event, property or attribute name: letters, digits, '_', '.', '-' or ':'."""
    return bool(name) and len(name) <= EVENT_NAME_MAX and all(ch.isalnum() or ch in "_.-:" for ch in name)


def _time_input() -> UnfoldAdminTextInputWidget:
    return UnfoldAdminTextInputWidget(attrs={"type": "time"})


def _clock(value: Any) -> time:
    hours, _sep, minutes = str(value or "09:00").partition(":")
    try:
        return time(int(hours), int(minutes or 0))
    except ValueError:
        return time(9, 0)


# --- the trigger ----------------------------------------------------------------------------
class TriggerForm(forms.Form):
    trigger_type = forms.ChoiceField(label=gettext_lazy("What starts it"), choices=Trigger.choices, widget=UnfoldAdminSelectWidget)
    # event
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"),
        required=False,
        widget=UnfoldAdminSelectMultipleWidget(attrs={"size": 8}),
        help_text=gettext_lazy("Event names your application sends, and those Mailroom records itself. Pick one or more."),
    )
    other_events = forms.CharField(
        label=gettext_lazy("Other event names"),
        required=False,
        max_length=500,
        widget=UnfoldAdminTextInputWidget,
        help_text=gettext_lazy("For an event not sent yet: its name, or several separated by commas."),
    )
    fan_out = forms.BooleanField(
        label=gettext_lazy("Start a run for every member of the audience"),
        required=False,
        widget=UnfoldBooleanSwitchWidget,
        help_text=gettext_lazy(
            "For a broadcast event such as new content: everyone in the audience gets a run, not only the contact whose event it is. "
            "Needs a second person's approval."
        ),
    )
    # segment entry
    segment = forms.ModelChoiceField(
        label=gettext_lazy("Segment"),
        queryset=Segment.objects.order_by("name"),
        required=False,
        widget=UnfoldAdminSelectWidget,
        empty_label=gettext_lazy("Choose a segment"),
    )
    # form confirmed
    signup_form = forms.ModelChoiceField(
        label=gettext_lazy("Sign-up form"),
        queryset=SignupForm.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        widget=UnfoldAdminSelectWidget,
        empty_label=gettext_lazy("Any sign-up form"),
        error_messages={"invalid_choice": gettext_lazy("That sign-up form does not exist (any more): choose one from the list.")},
        help_text=gettext_lazy("A run starts when someone confirms their sign-up on this form (double opt-in: when they open the link)."),
    )
    # date attribute
    attribute = forms.ChoiceField(
        label=gettext_lazy("Date attribute"),
        required=False,
        widget=UnfoldAdminSelectWidget,
        help_text=gettext_lazy("The contact attribute holding the date, e.g. a birthday or a renewal date."),
    )
    other_attribute = forms.CharField(
        label=gettext_lazy("Other attribute"), required=False, max_length=EVENT_NAME_MAX, widget=UnfoldAdminTextInputWidget
    )
    yearly = forms.BooleanField(label=gettext_lazy("Every year (an anniversary)"), required=False, widget=UnfoldBooleanSwitchWidget)
    at = forms.TimeField(
        label=gettext_lazy("At"), required=False, widget=_time_input(), help_text=gettext_lazy("In each contact's time zone.")
    )
    offset_direction = forms.ChoiceField(label=gettext_lazy("When"), choices=DIRECTIONS, required=False, widget=UnfoldAdminSelectWidget)
    offset_amount = forms.IntegerField(
        label=gettext_lazy("How long"), required=False, min_value=0, max_value=100_000, widget=UnfoldAdminIntegerFieldWidget
    )
    offset_unit = forms.ChoiceField(label=gettext_lazy("Unit"), choices=UNITS, required=False, widget=UnfoldAdminSelectWidget)
    # schedule
    weekday = forms.ChoiceField(
        label=gettext_lazy("Day"),
        required=False,
        choices=[(EVERY_DAY, gettext_lazy("Every day")), *((str(n), name) for n, name in enumerate(WEEKDAYS))],
        widget=UnfoldAdminSelectWidget,
    )
    time = forms.TimeField(
        label=gettext_lazy("Time"), required=False, widget=_time_input(), help_text=gettext_lazy("In each contact's time zone.")
    )

    EVENT_FIELDS = ("events", "other_events", "fan_out")
    SEGMENT_FIELDS = ("segment",)
    FORM_FIELDS = ("signup_form",)
    DATE_FIELDS = ("attribute", "other_attribute", "yearly", "at", "offset_direction", "offset_amount", "offset_unit")
    SCHEDULE_FIELDS = ("weekday", "time")

    def __init__(self, *args, current: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        current = current or {}
        names = set(known_event_names()) | set(current.get("events") or [])
        self.fields["events"].choices = [(ANY_EVENT, _("Any event")), *((name, name) for name in sorted(names - {ANY_EVENT}))]
        attributes = set(known_date_attributes()) | ({current["attribute"]} if current.get("attribute") else set())
        self.fields["attribute"].choices = [("", _("Choose an attribute")), *((name, name) for name in sorted(attributes))]

    def groups(self) -> list[tuple[str, str, list]]:
        """(trigger kind, title, bound fields) for the template: one fieldset per kind."""
        kinds = (
            (Trigger.EVENT, self.EVENT_FIELDS),
            (Trigger.SEGMENT_ENTRY, self.SEGMENT_FIELDS),
            (Trigger.DATE, self.DATE_FIELDS),
            (Trigger.SCHEDULE, self.SCHEDULE_FIELDS),
            (Trigger.FORM_CONFIRMED, self.FORM_FIELDS),
        )
        return [(kind, Trigger(kind).label, [self[name] for name in names]) for kind, names in kinds]

    def clean_other_events(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data.get("other_events", "").split(",") if name.strip()]
        bad = [name for name in names if not valid_name(name)]
        if bad:
            raise forms.ValidationError(
                _("“%(name)s” is not an event name: 1 to 100 letters, digits, '_', '.', '-' or ':'.") % {"name": bad[0]}
            )
        return names

    def clean_other_attribute(self) -> str:
        name = self.cleaned_data.get("other_attribute", "").strip()
        if name and not valid_name(name):
            raise forms.ValidationError(_("An attribute name is letters, digits, '_', '.', '-' or ':'."))
        return name

    def clean(self) -> dict:
        data = super().clean()
        kind = data.get("trigger_type")
        if kind == Trigger.EVENT and not (data.get("events") or data.get("other_events")) and "other_events" not in self.errors:
            self.add_error("events", _("Choose at least one event."))
        if kind == Trigger.SEGMENT_ENTRY and not data.get("segment"):
            self.add_error("segment", _("Choose the segment contacts enter."))
        if kind == Trigger.DATE:
            if not (data.get("other_attribute") or data.get("attribute")) and "other_attribute" not in self.errors:
                self.add_error("attribute", _("Choose the attribute holding the date."))
            if data.get("offset_direction") in ("before", "after") and not data.get("offset_amount"):
                self.add_error("offset_amount", _("Say how long before or after the date."))
        return data


def trigger_data(trigger_type: str, trigger: dict | None) -> dict:
    """The stored trigger as form data (cleaned-data shape)."""
    trigger = trigger if isinstance(trigger, dict) else {}
    data: dict[str, Any] = {"trigger_type": trigger_type, "filters": []}
    if trigger_type == Trigger.EVENT:
        data["events"] = trigger_events(trigger)
        data["fan_out"] = bool(trigger.get("fan_out"))
        data["filters"] = [
            {
                "property": str(rule.get("property", "")),
                "op": rule.get("op", "eq"),
                "value": ", ".join(map(str, rule["value"])) if isinstance(rule.get("value"), list) else str(rule.get("value", "") or ""),
            }
            for rule in trigger.get("filters") or []
            if isinstance(rule, dict)
        ]
    elif trigger_type == Trigger.SEGMENT_ENTRY:
        data["segment"] = Segment.objects.filter(pk=trigger.get("segment") or 0).first()
    elif trigger_type == Trigger.FORM_CONFIRMED:
        slug = trigger.get("form")
        data["signup_form"] = SignupForm.objects.filter(slug=slug).first() if isinstance(slug, str) and slug else None
    elif trigger_type == Trigger.DATE:
        try:
            offset = int(float(trigger.get("offset_minutes") or 0))
        except (TypeError, ValueError):
            offset = 0
        unit = next(name for name in ("days", "hours", "minutes") if offset % MINUTES[name] == 0)
        data |= {
            "attribute": str(trigger.get("attribute") or ""),
            "yearly": bool(trigger.get("yearly")),
            "at": _clock(trigger.get("at")),
            "offset_direction": "before" if offset < 0 else "after" if offset > 0 else "on",
            "offset_amount": abs(offset) // MINUTES[unit] if offset else None,
            "offset_unit": unit if offset else "days",
        }
    elif trigger_type == Trigger.SCHEDULE:
        weekday = trigger.get("weekday")
        data |= {"weekday": EVERY_DAY if weekday in (None, "") else str(weekday), "time": _clock(trigger.get("time"))}
    return data


def _filter_value(op: str, text: str) -> Any:
    if op == "in":
        return [part.strip() for part in text.split(",") if part.strip()]
    if op in NUMBER_OPERATORS:
        number = float(text)
        return int(number) if number.is_integer() else number
    return text


def build_trigger(data: dict) -> tuple[str, dict]:
    """Cleaned form data → (trigger_type, the stored trigger)."""
    kind = data["trigger_type"]
    if kind == Trigger.EVENT:
        names = list(dict.fromkeys([*(data.get("events") or []), *(data.get("other_events") or [])]))
        trigger: dict[str, Any] = {"events": [ANY_EVENT] if ANY_EVENT in names else names}
        filters = [
            {"property": row["property"], "op": row["op"]}
            | ({} if row["op"] in ("exists", "not_exists") else {"value": _filter_value(row["op"], row["value"])})
            for row in data.get("filters") or []
            if row.get("property")
        ]
        if filters:
            trigger["filters"] = filters
        if data.get("fan_out"):
            trigger["fan_out"] = True
        return kind, trigger
    if kind == Trigger.SEGMENT_ENTRY:
        segment = data.get("segment")
        return kind, {"segment": segment.pk if segment else None}
    if kind == Trigger.FORM_CONFIRMED:
        form = data.get("signup_form")
        return kind, ({"form": form.slug} if form else {})
    if kind == Trigger.DATE:
        amount = data.get("offset_amount") or 0
        direction = data.get("offset_direction") or "on"
        offset = 0 if direction == "on" else amount * MINUTES[data.get("offset_unit") or "days"] * (-1 if direction == "before" else 1)
        trigger = {"attribute": data.get("other_attribute") or data.get("attribute"), "at": (data.get("at") or time(9)).strftime("%H:%M")}
        if data.get("yearly"):
            trigger["yearly"] = True
        if offset:
            trigger["offset_minutes"] = offset
        return kind, trigger
    weekday = data.get("weekday")
    return kind, {
        "weekday": None if weekday in (None, EVERY_DAY) else int(weekday),
        "time": (data.get("time") or time(9)).strftime("%H:%M"),
    }


def stored_trigger(automation: Automation) -> tuple[str, dict]:
    """The automation's trigger as the form would write it (for "did it change?")."""
    return build_trigger(trigger_data(automation.trigger_type, automation.trigger))


# --- property filters of an event trigger ----------------------------------------------------
class FilterRowForm(forms.Form):
    property = forms.CharField(
        label=gettext_lazy("Event property"), required=False, max_length=EVENT_NAME_MAX, widget=UnfoldAdminTextInputWidget
    )
    op = forms.ChoiceField(
        label=gettext_lazy("Condition"),
        choices=[(op, label) for op, label in OPERATOR_LABELS.items()],
        initial="eq",
        required=False,
        widget=UnfoldAdminSelectWidget,
    )
    value = forms.CharField(label=gettext_lazy("Value"), required=False, max_length=200, widget=UnfoldAdminTextInputWidget)

    def clean(self) -> dict:
        data = super().clean()
        name, op, value = data.get("property", "").strip(), data.get("op") or "eq", data.get("value", "").strip()
        data |= {"property": name, "op": op, "value": value}
        if not name:
            if value:
                self.add_error("property", _("Name the event property this value is compared with."))
            return data
        if not valid_name(name):
            self.add_error("property", _("A property name is letters, digits, '_', '.', '-' or ':'."))
        if op not in ("exists", "not_exists") and not value:
            self.add_error("value", _("Give the value to compare with."))
        elif op in NUMBER_OPERATORS:
            try:
                float(value)
            except ValueError:
                self.add_error("value", _("“%(value)s” is not a number.") % {"value": value})
        return data


FilterFormSet = forms.formset_factory(FilterRowForm, extra=1, max_num=20, absolute_max=20)


# --- exits ------------------------------------------------------------------------------------
class ExitRowForm(forms.Form):
    event = forms.ChoiceField(label=gettext_lazy("Event"), required=False, widget=UnfoldAdminSelectWidget)
    match = forms.CharField(
        label=gettext_lazy("Only with the same property"),
        required=False,
        max_length=EVENT_NAME_MAX,
        widget=UnfoldAdminTextInputWidget,
    )

    def __init__(self, *args, event_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = [
            ("", _("No exit")),
            (ANY_EVENT, _("Any other event")),
            *((name, name) for name in event_names),
        ]

    def clean(self) -> dict:
        data = super().clean()
        match = data.get("match", "").strip()
        data["match"] = match
        if match and not data.get("event"):
            self.add_error("event", _("Choose the event that ends the run."))
        if match and not valid_name(match):
            self.add_error("match", _("A property name is letters, digits, '_', '.', '-' or ':'."))
        return data


ExitFormSet = forms.formset_factory(ExitRowForm, extra=2, max_num=20, absolute_max=20)


def exit_data(exit_events: Any) -> list[dict]:
    return [
        {"event": str(rule.get("event", "")), "match": str(rule.get("match") or "")} for rule in exit_events or [] if isinstance(rule, dict)
    ]


def build_exits(rows: list[dict]) -> list[dict]:
    return [{"event": row["event"]} | ({"match": row["match"]} if row.get("match") else {}) for row in rows if row.get("event")]


def exit_event_names(exit_events: Any) -> list[str]:
    names = set(known_event_names()) | {row["event"] for row in exit_data(exit_events)}
    return sorted(names - {"", ANY_EVENT})
