"""What a segment rule can look at: one `SegmentField` per field, in a registry.

Growth registers its own fields (loyalty tier, referral count) from its AppConfig, so
this app never imports it. A field turns one validated rule into a `Q` over contacts;
anything it needs to count or join happens in a subquery, so a whole rule tree is still
one query.
"""

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connection
from django.db.models import Case, Count, F, Field, FloatField, Func, Max, Q, QuerySet, Sum, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, IContains, In, LessThan, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing.models import Event, Order
from messaging.models import Channel, Contact, DeliveryEvent, Subscription, Topic


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

NUMERIC = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_DAYS = 3650


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


# --- value parsing -----------------------------------------------------------------------


def parse_number(raw: str) -> Decimal:
    try:
        number = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise RuleValueError(_("“%(value)s” is not a number.") % {"value": raw}) from None
    if not number.is_finite():
        raise RuleValueError(_("“%(value)s” is not a number.") % {"value": raw})
    return number


def parse_days(raw: str) -> int:
    try:
        days = int(str(raw).strip())
    except ValueError:
        raise RuleValueError(_("“%(value)s” is not a whole number of days.") % {"value": raw}) from None
    if not 1 <= days <= MAX_DAYS:
        raise RuleValueError(_("The number of days must be between 1 and %(max)s.") % {"max": MAX_DAYS})
    return days


def parse_date(raw: str) -> datetime:
    try:
        day = date.fromisoformat(str(raw).strip())
    except ValueError:
        raise RuleValueError(_("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": raw}) from None
    return timezone.make_aware(datetime.combine(day, time.min))


def parse_list(raw: str) -> list[str]:
    items = [item.strip() for item in str(raw).split(",") if item.strip()]
    if not items:
        raise RuleValueError(_("Give at least one value, separated by commas."))
    return items


def require_text(raw: str) -> str:
    text = str(raw).strip()
    if not text:
        raise RuleValueError(_("This rule needs a value."))
    return text


def _days_ago(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)


# --- builders ----------------------------------------------------------------------------


def text_q(column: str, rule: Rule) -> Q:
    op = rule.operator
    if op == "is_set":
        return Q(**{f"{column}__isnull": False}) & ~Q(**{column: ""})
    if op == "is_not_set":
        return Q(**{f"{column}__isnull": True}) | Q(**{column: ""})
    if op == "in":
        return Q(**{f"{column}__in": parse_list(rule.value)})
    value = require_text(rule.value)
    lookups = {
        "equals": "iexact",
        "not_equals": "iexact",
        "contains": "icontains",
        "not_contains": "icontains",
        "starts_with": "istartswith",
        "ends_with": "iendswith",
    }
    q = Q(**{f"{column}__{lookups[op]}": value})
    return ~q if op.startswith("not_") else q


def choice_q(column: str, rule: Rule) -> Q:
    op = rule.operator
    if op in ("in", "not_in"):
        q = Q(**{f"{column}__in": parse_list(rule.value)})
    else:
        q = Q(**{column: require_text(rule.value)})
    return ~q if op.startswith("not_") else q


def date_q(column: str, rule: Rule) -> Q:
    op = rule.operator
    if op == "is_set":
        return Q(**{f"{column}__isnull": False})
    if op == "is_not_set":
        return Q(**{f"{column}__isnull": True})
    if op == "in_last_days":
        return Q(**{f"{column}__gte": _days_ago(parse_days(rule.value))})
    if op == "not_in_last_days":
        return Q(**{f"{column}__lt": _days_ago(parse_days(rule.value))}) | Q(**{f"{column}__isnull": True})
    moment = parse_date(rule.value)
    return Q(**{f"{column}__lt": moment}) if op == "before" else Q(**{f"{column}__gte": moment + timedelta(days=1)})


NUMBER_LOOKUPS = {"eq": Exact, "gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}


def attribute_key(rule: Rule) -> str:
    key = rule.key.strip()
    if not ATTRIBUTE_KEY.match(key):
        raise RuleValueError(_("“%(key)s” is not an attribute name (letters, digits and _).") % {"key": key})
    return key


class JsonValue(Func):
    """SQLite: `JSON_EXTRACT(attributes, '$."key"')`, one JSON parse per row. Django's
    key lookups wrap it in JSON_TYPE checks that parse the document twice more, which is
    most of the cost of a count over 100,000 contacts."""

    function = "JSON_EXTRACT"

    def __init__(self, key: str):
        super().__init__(F("attributes"), Value(f'$."{key}"'), output_field=Field())


class JsonNumber(Func):
    """SQLite: the attribute as a number when its text looks like one ("7", 7, -2.5),
    else NULL, so a comparison never matches a word."""

    def __init__(self, key: str):
        super().__init__(F("attributes"), Value(f'$."{key}"'), output_field=FloatField())

    def as_sql(self, compiler, connection, **extra):
        column, column_params = compiler.compile(self.source_expressions[0])
        path = self.source_expressions[1].value
        text = f"TRIM(JSON_EXTRACT({column}, %s))"
        sql = f"(CASE WHEN {text} GLOB '*[0-9]*' AND {text} NOT GLOB '*[^0-9.-]*' THEN CAST(JSON_EXTRACT({column}, %s) AS REAL) END)"
        return sql, (*column_params, path, *column_params, path, *column_params, path)


def _plain_ascii(value: str) -> bool:
    """True when the value is stored verbatim in the JSON text (no escaping needed)."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


def raw_json_may_hold(value: str) -> Q:
    """A cheap LIKE on the raw JSON text, true for every contact whose attributes could
    hold `value`; it lets SQLite skip parsing most rows. Empty Q when it cannot help."""
    if not _plain_ascii(value):
        return Q()
    return Q(IContains(Cast(F("attributes"), TextField()), value))


def list_includes(key: str, value: str) -> Q:
    """Contacts whose attribute `key` is a list holding `value` (e.g. tags includes vip)."""
    if connection.vendor == "postgresql":
        # A subquery, so that "does not include" also matches contacts without the key.
        return Q(pk__in=Contact.objects.filter(**{f"attributes__{key}__contains": [value]}).values("pk"))
    # SQLite has no JSON containment lookup: json_each, in a self-contained subquery so
    # the SQL never depends on the outer query's table aliases.
    prefilter, params = "", []
    if _plain_ascii(value):
        prefilter, params = "c.attributes LIKE %s AND ", [f'%"{value}"%']
    return Q(
        pk__in=RawSQL(
            f"SELECT c.id FROM messaging_contact c WHERE {prefilter}"
            "EXISTS (SELECT 1 FROM json_each(c.attributes, %s) j WHERE j.value = %s)",
            (*params, f"$.{key}", value),
        )
    )


def _equal_values(value: str) -> list:
    """Attributes come from CSV imports and APIs: "3" and 3 are the same answer to a person."""
    values: list = [value]
    try:
        number = Decimal(value)
        values.append(int(number) if number == number.to_integral_value() else float(number))
    except InvalidOperation:
        if value.lower() in ("true", "false"):
            values.append(value.lower() == "true")
    return values


def attribute_q(rule: Rule) -> Q:
    key = attribute_key(rule)
    column = f"attributes__{key}"
    op = rule.operator
    sqlite = connection.vendor == "sqlite"
    if op == "is_set":
        return Q(**{f"{column}__isnull": False})
    if op == "is_not_set":
        return Q(**{f"{column}__isnull": True})
    if op in ("includes", "not_includes"):
        q = list_includes(key, require_text(rule.value))
        return ~q if op == "not_includes" else q
    if op in ("gt", "gte", "lt", "lte"):
        number = float(parse_number(rule.value))
        if sqlite:
            return Q(NUMBER_LOOKUPS[op](JsonNumber(key), number))
        # Imported attributes are often numbers written as text ("7"): compare the value
        # as a number when it looks like one, and never match when it does not.
        as_number = Case(
            When(Q(**{f"{column}__regex": NUMERIC}), then=Cast(KeyTextTransform(key, "attributes"), FloatField())),
            default=None,
            output_field=FloatField(),
        )
        return Q(NUMBER_LOOKUPS[op](as_number, number))
    if op == "in":
        values = parse_list(rule.value)
        if not sqlite:
            return Q(**{f"{column}__in": values})
        prefilter = Q()
        if len(values) <= 10 and all(_plain_ascii(v) for v in values):
            for candidate in values:
                prefilter |= raw_json_may_hold(candidate)
        return prefilter & Q(In(JsonValue(key), values))
    if op == "contains":
        value = require_text(rule.value)
        if sqlite:
            return raw_json_may_hold(value) & Q(IContains(JsonValue(key), value))
        return Q(**{f"{column}__icontains": value})
    value = require_text(rule.value)
    values = _equal_values(value)
    if sqlite:
        q = raw_json_may_hold(value) & Q(In(JsonValue(key), [1 if v is True else 0 if v is False else v for v in values]))
    else:
        q = Q()
        for candidate in values:
            q |= Q(**{column: candidate})
    # "is not customer" includes contacts with no stage at all, on every database.
    return (~q | Q(**{f"{column}__isnull": True})) if op == "not_equals" else q


def topic_choices() -> list[tuple[str, str]]:
    return list(Topic.objects.values_list("key", "name"))


def members_of(contact_ids: QuerySet) -> Q:
    """Contacts whose id is in a subquery of contact ids. Every joined rule (consent,
    events, orders, engagement) is one non-correlated subquery: the database computes the
    set once instead of probing it for each of the 100,000 contacts."""
    return Q(pk__in=contact_ids)


COMPARE = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
HAVING = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def aggregate_q(groups: QuerySet, name: str, rule: Rule, *, by: str = "contact", zero: Decimal = Decimal(0)) -> Q:
    """Compare a per-contact aggregate (`groups` is annotated with `name`, grouped by
    contact) with the rule's number. Contacts with no rows have the value `zero`, so a
    comparison true at zero ("fewer than 3 orders") is written as "not among those for
    whom it is false". `by` names the contact column the groups are keyed on. Other apps
    use it for their own per-contact numbers (loyalty points, rewarded referrals)."""
    number = parse_number(rule.value)
    op = rule.operator
    if op == "ne":
        failing = groups.filter(**{name: number})
    else:
        failing = groups.exclude(**{f"{name}__{HAVING[op]}": number})
    if COMPARE[op](zero, number):
        return ~members_of(failing.values(by))
    passing = groups.exclude(**{name: number}) if op == "ne" else groups.filter(**{f"{name}__{HAVING[op]}": number})
    return members_of(passing.values(by))


def subscription_q(rule: Rule) -> Q:
    topic = rule.key.strip()
    if not Topic.objects.filter(key=topic).exists():
        raise RuleValueError(_("There is no topic “%(topic)s”.") % {"topic": topic})
    channel = rule.channel or Channel.EMAIL
    if channel not in Channel.values:
        raise RuleValueError(_("“%(channel)s” is not a channel.") % {"channel": channel})
    subscribed = members_of(
        Subscription.objects.filter(topic__key=topic, channel=channel, status=Subscription.Status.SUBSCRIBED).values("contact")
    )
    return subscribed if rule.operator == "is_subscribed" else ~subscribed


def event_q(rule: Rule) -> Q:
    name = require_text(rule.key)
    events = Event.objects.filter(name=name)
    if rule.days:
        events = events.filter(occurred_at__gte=_days_ago(parse_days(rule.days)))
    if rule.operator == "count_at_least":
        wanted = parse_number(rule.value)
        if wanted < 1 or wanted != wanted.to_integral_value():
            raise RuleValueError(_("The count must be a whole number of at least 1."))
        counted = events.order_by().values("contact").annotate(n=Count("id")).filter(n__gte=int(wanted))
        return members_of(counted.values("contact"))
    happened = members_of(events.values("contact"))
    return happened if rule.operator == "did" else ~happened


def _revenue_orders() -> QuerySet:
    return Order.objects.filter(status__in=Order.REVENUE_STATUSES).order_by()


def order_count_q(rule: Rule) -> Q:
    return aggregate_q(_revenue_orders().values("contact").annotate(n=Count("id")), "n", rule)


def lifetime_value_q(rule: Rule) -> Q:
    return aggregate_q(_revenue_orders().values("contact").annotate(total=Sum("amount")), "total", rule)


def last_order_q(rule: Rule) -> Q:
    op = rule.operator
    if op in ("is_set", "is_not_set"):
        q = members_of(_revenue_orders().values("contact"))
        return q if op == "is_set" else ~q
    if op in ("in_last_days", "not_in_last_days"):
        q = members_of(_revenue_orders().filter(placed_at__gte=_days_ago(parse_days(rule.value))).values("contact"))
        return q if op == "in_last_days" else ~q
    moment = parse_date(rule.value)
    latest = _revenue_orders().values("contact").annotate(at=Max("placed_at"))
    if op == "before":
        return members_of(latest.filter(at__lt=moment).values("contact"))
    return members_of(latest.filter(at__gte=moment + timedelta(days=1)).values("contact"))


def engagement_q(kind: str) -> Callable[[Rule], Q]:
    def build(rule: Rule) -> Q:
        recent = members_of(
            DeliveryEvent.objects.filter(
                kind=kind, occurred_at__gte=_days_ago(parse_days(rule.value)), message__contact__isnull=False
            ).values("message__contact")
        )
        return recent if rule.operator == "in_last_days" else ~recent

    return build


def language_choices() -> list[tuple[str, str]]:
    return [(code, str(name)) for code, name in settings.LANGUAGES]


CONTACT = gettext_lazy("Contact")
ENGAGEMENT = gettext_lazy("Engagement")


def _register_builtin_fields() -> None:
    for name, label in (
        ("email", gettext_lazy("Email")),
        ("phone", gettext_lazy("Phone")),
        ("first_name", gettext_lazy("First name")),
        ("last_name", gettext_lazy("Last name")),
        ("external_id", gettext_lazy("External id")),
    ):
        register_segment_field(SegmentField(name, label, CONTACT, TEXT_OPERATORS, lambda rule, column=name: text_q(column, rule)))
    register_segment_field(
        SegmentField(
            "locale",
            gettext_lazy("Language"),
            CONTACT,
            CHOICE_OPERATORS,
            lambda rule: choice_q("locale", rule),
            choices=language_choices,
            value_hint="en, fr",
        )
    )
    register_segment_field(
        SegmentField(
            "timezone",
            gettext_lazy("Time zone"),
            CONTACT,
            CHOICE_OPERATORS,
            lambda rule: choice_q("timezone", rule),
            value_hint="Europe/Paris",
        )
    )
    register_segment_field(
        SegmentField(
            "created_at",
            gettext_lazy("Signed up"),
            CONTACT,
            DATE_OPERATORS,
            lambda rule: date_q("created_at", rule),
            value_hint=gettext_lazy("days, or YYYY-MM-DD"),
        )
    )
    register_segment_field(
        SegmentField(
            "attribute",
            gettext_lazy("Attribute"),
            gettext_lazy("Attributes"),
            ATTRIBUTE_OPERATORS,
            attribute_q,
            needs=("key",),
            key_label=gettext_lazy("attribute name"),
            value_hint="lifecycle_stage, tags…",
        )
    )
    register_segment_field(
        SegmentField(
            "subscribed",
            gettext_lazy("Subscribed to topic"),
            gettext_lazy("Consent"),
            ("is_subscribed", "is_not_subscribed"),
            subscription_q,
            needs=("key", "channel"),
            key_label=gettext_lazy("topic"),
            choices=topic_choices,
        )
    )
    register_segment_field(
        SegmentField(
            "event",
            gettext_lazy("Event"),
            gettext_lazy("Events"),
            ("did", "did_not", "count_at_least"),
            event_q,
            needs=("key", "days"),
            key_label=gettext_lazy("event name"),
            value_hint=gettext_lazy("times"),
        )
    )
    register_segment_field(
        SegmentField("order_count", gettext_lazy("Number of orders"), gettext_lazy("Orders"), NUMBER_OPERATORS, order_count_q)
    )
    register_segment_field(
        SegmentField("lifetime_value", gettext_lazy("Lifetime value"), gettext_lazy("Orders"), NUMBER_OPERATORS, lifetime_value_q)
    )
    register_segment_field(
        SegmentField(
            "last_order",
            gettext_lazy("Last order"),
            gettext_lazy("Orders"),
            DATE_OPERATORS,
            last_order_q,
            value_hint=gettext_lazy("days, or YYYY-MM-DD"),
        )
    )
    register_segment_field(
        SegmentField(
            "opened",
            gettext_lazy("Opened a message"),
            ENGAGEMENT,
            ("in_last_days", "not_in_last_days"),
            engagement_q(DeliveryEvent.Kind.OPENED),
            value_hint=gettext_lazy("days"),
        )
    )
    register_segment_field(
        SegmentField(
            "clicked",
            gettext_lazy("Clicked a link"),
            ENGAGEMENT,
            ("in_last_days", "not_in_last_days"),
            engagement_q(DeliveryEvent.Kind.CLICKED),
            value_hint=gettext_lazy("days"),
        )
    )


_register_builtin_fields()
