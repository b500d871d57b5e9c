"""The settings each step kind takes: one DRF serializer per kind names, documents and
checks them, and `clean_step_config` is the one way in (the actions call it before a step
is stored, moved or goes live; the console, the API and the presets all reach it there).

Each field says what is wrong in one sentence made from the value given, so a bad setting
reads the same whichever way it came. A config keeps the keys it was given (presets and
older steps carry a few the serializers do not name); only `rewrites` are replaced by
their cleaned value (a send's stripped template key and its default channel).
"""

from collections.abc import Callable, Mapping
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from marketing.automations.clock import parse_clock
from marketing.automations.matching import OPERATORS
from marketing.automations.steps.context import CONTEXT_BUILDERS
from marketing.models import AutomationStep
from messaging.errors import InvalidInput
from messaging.models import Channel, Template, Topic

Kind = AutomationStep.Kind
CHECKS = ("consent", "attribute", "property", "tag", "event_since_start")
DURATION_UNITS = ("seconds", "minutes", "hours", "days")
UNTIL_KEYS = ("property", "attribute", "time")
IF_PAST = ("continue", "skip_next")


# --- fields that say what is wrong in one sentence ----------------------------------------------
class OneSentence:
    """A field whose every failure (missing, wrong type, refused by a validator) reads as
    one sentence, `says(value given)`, translated when it is raised."""

    def __init__(self, *args, says: Callable[[Any], str], **kwargs):
        self.says = says
        super().__init__(*args, **kwargs)

    def run_validation(self, data=empty):
        try:
            return super().run_validation(data)
        except serializers.ValidationError:
            raise serializers.ValidationError(self.says("" if data is empty else data)) from None


class Text(OneSentence, serializers.CharField):
    pass


class StrictText(Text):
    """Text given as a JSON string (a number is not a name)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Choice(OneSentence, serializers.ChoiceField):
    pass


class Number(OneSentence, serializers.FloatField):
    pass


class Whole(OneSentence, serializers.IntegerField):
    pass


class Json(OneSentence, serializers.JSONField):
    pass


class Object(OneSentence, serializers.DictField):
    pass


class Names(OneSentence, serializers.ListField):
    pass


def _exists(model, field: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not model.objects.filter(**{field: value}).exists():
            raise serializers.ValidationError("missing")

    return check


def _clock(value: str) -> None:
    try:
        parse_clock(value)
    except ValueError:
        raise serializers.ValidationError("not a time") from None


def _later_step(value: Any, field: serializers.Field) -> None:
    """`else` is "exit" or {"goto": n} with n after the condition's own step number."""
    if value == "exit":
        return
    target = value.get("goto") if isinstance(value, dict) else None
    position = field.context.get("position")
    if not isinstance(target, int) or (position is not None and target <= position + 1):
        raise serializers.ValidationError("not a later step")


_later_step.requires_context = True


def _whole(message: str) -> serializers.ValidationError:
    """A problem with the settings as a whole (not one of them)."""
    return serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [message]})


class StepConfig(serializers.Serializer):
    """Base of the per-kind serializers. `context["position"]`: the step's place (0-based)."""

    rewrites: tuple[str, ...] = ()


# --- send ---------------------------------------------------------------------------------
class SendConfig(StepConfig):
    """Send a template to the run's contact."""

    rewrites = ("template", "channel")

    template = Text(
        validators=[_exists(Template, "key")],
        help_text="The key of an existing template.",
        says=lambda key: _("A send step needs the key of an existing template (got “%(key)s”).") % {"key": str(key).strip()},
    )
    channel = Choice(
        choices=Channel.choices,
        default=Channel.EMAIL,
        says=lambda channel: _("Unknown channel “%(channel)s”.") % {"channel": channel},
    )
    topic = Text(
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=False,
        validators=[_exists(Topic, "key")],
        help_text="Send on this topic instead of the template's.",
        says=lambda key: _("No topic with the key “%(key)s”.") % {"key": key},
    )
    context = Choice(
        choices=CONTEXT_BUILDERS,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="More for the message to say: the order the trigger names, or the contact's week.",
        says=lambda name: _("Unknown message context “%(name)s”.") % {"name": name},
    )
    once_per = StrictText(
        required=False,
        help_text="One message per contact and value of this run property (e.g. appointment_id), whichever run gets there first.",
        says=lambda _value: _("“once_per” names a property of the event, e.g. appointment_id."),
    )


# --- wait ---------------------------------------------------------------------------------
def _duration(unit: str) -> Number:
    return Number(
        required=False,
        min_value=0,
        help_text=f"Wait this many {unit}.",
        says=lambda _value: _("The wait's %(unit)s must be a positive number.") % {"unit": unit},
    )


def _until_sentence(_value: Any = None) -> str:
    return _("“until” names a property, an attribute or a local time.")


class WaitUntilConfig(serializers.Serializer):
    """Wait until a date in the trigger's data (`property`) or on the contact (`attribute`),
    plus `offset_minutes`; or until the next local `time` (on `weekday`, 0 = Monday)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "property": Text(required=False, help_text="A date in the run's trigger data, e.g. appointment_at.", says=_until_sentence),
            "attribute": Text(required=False, help_text="A date attribute of the contact, e.g. renewal_at.", says=_until_sentence),
            "time": Text(
                required=False,
                validators=[_clock],
                help_text="A local time like 09:00, in the contact's time zone.",
                says=lambda value: _("“%(value)s” is not a time like 09:00.") % {"value": value},
            ),
            "weekday": Whole(
                required=False,
                allow_null=True,
                min_value=0,
                max_value=6,
                help_text="With `time`: 0 (Monday) to 6 (Sunday).",
                says=lambda _value: _("The weekday is 0 (Monday) to 6 (Sunday)."),
            ),
            "offset_minutes": Number(
                required=False,
                help_text="Minutes after the date (negative: before).",
                says=lambda _value: _("“offset_minutes” is a number of minutes (negative: before)."),
            ),
        }

    def to_internal_value(self, data):
        if not isinstance(data, Mapping) or not set(UNTIL_KEYS) & set(data):
            raise _whole(_until_sentence())
        return super().to_internal_value(data)


class WaitConfig(StepConfig):
    """Wait a duration, or until a moment; `if_past` says what happens when that moment has
    already passed."""

    seconds = _duration("seconds")
    minutes = _duration("minutes")
    hours = _duration("hours")
    days = _duration("days")
    until = WaitUntilConfig(required=False, allow_null=True)
    if_past = Choice(
        choices=IF_PAST,
        required=False,
        help_text="continue (the default) or skip_next (skip the following step).",
        says=lambda _value: _("“if_past” is continue or skip_next."),
    )

    def to_internal_value(self, data):
        if data.get("until") is None and not set(DURATION_UNITS) & set(data):
            raise _whole(_("A wait needs a duration (minutes, hours or days) or an “until”."))
        return super().to_internal_value(data)


# --- condition ----------------------------------------------------------------------------
def _text(help_text: str, name: str) -> Text:
    return Text(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=help_text,
        says=lambda _value: _("“%(name)s” must be text.") % {"name": name},
    )


class ConditionConfig(StepConfig):
    """Go on when the check holds; otherwise exit, or go to a later step."""

    check = Choice(
        choices=CHECKS,
        help_text="What to check: consent (topic, channel), attribute or property (name, op, value), tag, event_since_start (event).",
        says=lambda _value: _("A condition checks consent, attribute, property, tag or event_since_start."),
    )
    topic = _text("consent: the topic's key.", "topic")
    channel = _text("consent: the channel (default email).", "channel")
    name = _text("attribute or property: its name (a.b for nested values).", "name")
    op = Choice(
        choices=OPERATORS,
        required=False,
        help_text="attribute or property: how to compare (default eq).",
        says=lambda op: _("Unknown operator “%(op)s”.") % {"op": op},
    )
    value = serializers.JSONField(required=False, allow_null=True, help_text="attribute or property: the value to compare with.")
    tag = _text("tag: the tag the contact carries.", "tag")
    event = _text("event_since_start: the event's name.", "event")
    else_ = Json(
        required=False,
        validators=[_later_step],
        help_text='"exit" (the default) or {"goto": a later step number}.',
        says=lambda _value: _("“else” is exit or {“goto”: a later step number}."),
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["else"] = fields.pop("else_")  # a Python keyword, so declared as else_
        return fields

    def to_internal_value(self, data):
        if data.get("check") not in ("attribute", "property"):
            data = {key: value for key, value in data.items() if key != "op"}  # only these checks read it
        return super().to_internal_value(data)


# --- update -------------------------------------------------------------------------------
class UpdateConfig(StepConfig):
    """Change the contact: set or clear attributes, add or remove a tag."""

    set = Object(
        required=False,
        help_text="Attributes to set: names and values.",
        says=lambda _value: _("“set” is an object of attribute names and values."),
    )
    unset = Names(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="Attributes to clear.",
        says=lambda _value: _("“unset” is a list of attribute names."),
    )
    add_tag = _text("A tag to add.", "add_tag")
    remove_tag = _text("A tag to remove.", "remove_tag")

    def to_internal_value(self, data):
        if not any(data.get(name) for name in ("set", "unset", "add_tag", "remove_tag")):
            raise _whole(_("An update sets or unsets attributes, or adds or removes a tag."))
        return super().to_internal_value(data)


# --- subscribe / unsubscribe ----------------------------------------------------------------
def _topic(says: Callable[[Any], str]) -> Text:
    return Text(validators=[_exists(Topic, "key")], help_text="The key of an existing topic.", says=says)


def _consent_channel() -> Choice:
    return Choice(
        choices=Channel.choices,
        default=Channel.EMAIL,
        help_text="The channel the consent is for (default email).",
        says=lambda channel: _("Unknown channel “%(channel)s”.") % {"channel": channel},
    )


class SubscribeConfig(StepConfig):
    """Subscribe the contact to a topic on a channel, through messaging's consent action: the
    consent record says which automation and step did it."""

    rewrites = ("topic", "channel")

    topic = _topic(lambda key: _("A subscribe step needs the key of an existing topic (got “%(key)s”).") % {"key": str(key).strip()})
    channel = _consent_channel()


class UnsubscribeConfig(StepConfig):
    """Unsubscribe the contact from a topic on a channel, like any other unsubscribe: the
    queued marketing messages of that topic on that channel are cancelled."""

    rewrites = ("topic", "channel")

    topic = _topic(lambda key: _("An unsubscribe step needs the key of an existing topic (got “%(key)s”).") % {"key": str(key).strip()})
    channel = _consent_channel()


# --- exit ---------------------------------------------------------------------------------
class ExitConfig(StepConfig):
    """End the run (completed)."""

    reason = _text("Why, for the run's history.", "reason")


CONFIG_SERIALIZERS: dict[str, type[StepConfig]] = {
    Kind.SEND: SendConfig,
    Kind.WAIT: WaitConfig,
    Kind.CONDITION: ConditionConfig,
    Kind.UPDATE: UpdateConfig,
    Kind.SUBSCRIBE: SubscribeConfig,
    Kind.UNSUBSCRIBE: UnsubscribeConfig,
    Kind.EXIT: ExitConfig,
}


def _first_message(errors: Any) -> str:
    """The first problem in a serializer's errors (fields in the order they are declared)."""
    while not isinstance(errors, str):
        errors = next(iter(errors.values())) if isinstance(errors, Mapping) else errors[0]
    return str(errors)


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, fields={"config": [message]})


def clean_step_config(*, kind: str, config: dict | None, position: int | None = None) -> dict:
    """Check one step's settings; returns them cleaned. Raises InvalidInput naming the problem."""
    if kind not in Kind.values:
        raise InvalidInput(_("Unknown step kind “%(kind)s”.") % {"kind": kind}, fields={"kind": [_("Unknown step kind.")]})
    try:
        config = dict(config or {})
    except (TypeError, ValueError):
        raise _invalid(_("A step's settings are an object, e.g. {“hours”: 24}.")) from None
    serializer = CONFIG_SERIALIZERS[kind](data=config, context={"position": position})
    if not serializer.is_valid():
        raise _invalid(_first_message(serializer.errors))
    cleaned = serializer.validated_data
    return config | {name: cleaned[name] for name in serializer.rewrites if name in cleaned}
