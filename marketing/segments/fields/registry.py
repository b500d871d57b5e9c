"""What a rule and a segment field are, the operators a field may offer, and the registry
(`register_segment_field`) the compiler and the builder read."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils.translation import gettext_lazy


class RuleValueError(ValueError):
    """A value a field cannot use; the compiler adds which rule it was."""


@dataclass(frozen=True)
class Rule:
    field: str
    operator: str
    value: str = ""
    key: str = ""  # attribute name, event name or topic key
    channel: str = ""
    days: str = ""


TEXT_OPERATORS = ("equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with", "in", "is_set", "is_not_set")
NUMBER_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte")
DATE_OPERATORS = ("in_last_days", "not_in_last_days", "before", "after", "is_set", "is_not_set")
CHOICE_OPERATORS = ("equals", "not_equals", "in", "not_in")
ATTRIBUTE_OPERATORS = (
    "equals",
    "not_equals",
    "contains",
    "includes",
    "not_includes",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "is_set",
    "is_not_set",
)
NO_VALUE_OPERATORS = {"is_set", "is_not_set", "is_subscribed", "is_not_subscribed", "did", "did_not"}

OPERATOR_LABELS = {
    "equals": gettext_lazy("is"),
    "not_equals": gettext_lazy("is not"),
    "contains": gettext_lazy("contains"),
    "not_contains": gettext_lazy("does not contain"),
    "starts_with": gettext_lazy("starts with"),
    "ends_with": gettext_lazy("ends with"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "is_set": gettext_lazy("is set"),
    "is_not_set": gettext_lazy("is not set"),
    "includes": gettext_lazy("includes (list)"),
    "not_includes": gettext_lazy("does not include (list)"),
    "eq": "=",
    "ne": "≠",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "in_last_days": gettext_lazy("in the last N days"),
    "not_in_last_days": gettext_lazy("not in the last N days"),
    "before": gettext_lazy("before"),
    "after": gettext_lazy("after"),
    "is_subscribed": gettext_lazy("is subscribed"),
    "is_not_subscribed": gettext_lazy("is not subscribed"),
    "did": gettext_lazy("did"),
    "did_not": gettext_lazy("did not"),
    "count_at_least": gettext_lazy("did at least N times"),
}


@dataclass(frozen=True)
class SegmentField:
    name: str
    label: str
    group: str
    operators: tuple[str, ...]
    build: Callable[[Rule], Q]
    # Extra inputs the rule needs besides operator and value: "key", "channel", "days".
    needs: tuple[str, ...] = ()
    key_label: str = ""
    value_hint: str = ""
    choices: Callable[[], list[tuple[str, str]]] | None = field(default=None, compare=False)


_registry: dict[str, SegmentField] = {}


def register_segment_field(segment_field: SegmentField) -> None:
    _registry[segment_field.name] = segment_field


def segment_fields() -> dict[str, SegmentField]:
    return dict(_registry)


def get_segment_field(name: str) -> SegmentField | None:
    return _registry.get(name)
