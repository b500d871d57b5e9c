"""The attribute field: rules over the contacts' JSON `attributes`. SQLite and PostgreSQL
read JSON differently, so each comparison is written per database vendor (on SQLite with
JSON_EXTRACT / json_each and a cheap LIKE prefilter, on PostgreSQL with Django's key
lookups and containment)."""

import re
from decimal import Decimal, InvalidOperation

from django.db import connection
from django.db.models import Case, F, Field, FloatField, Func, Q, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, IContains, In, LessThan, LessThanOrEqual
from django.utils.translation import gettext as _

from marketing.segments.fields.parsers import parse_list, parse_number, require_text
from marketing.segments.fields.registry import Rule, RuleValueError
from messaging.models import Contact

NUMERIC = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
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
    """Contacts whose attribute `key` is a list holding `value` (e.g. tags includes vip).
    Its negation (`~`) must also match contacts without the key: see list_excludes."""
    if connection.vendor == "postgresql":
        return Q(**{f"attributes__{key}__contains": [value]})  # on the row itself: no second pass over contacts
    # SQLite has no JSON containment lookup: json_each, in a self-contained subquery so
    # the SQL never depends on the outer query's table aliases.
    prefilter, params = "", []
    if _plain_ascii(value):
        prefilter, params = "c.attributes LIKE %s AND ", [f'%"{value}"%']
    return Q(
        pk__in=RawSQL(
            f"SELECT c.id FROM {Contact._meta.db_table} c WHERE {prefilter}"  # a read; the table named by its model
            "EXISTS (SELECT 1 FROM json_each(c.attributes, %s) j WHERE j.value = %s)",
            (*params, f"$.{key}", value),
        )
    )


def list_excludes(key: str, value: str) -> Q:
    """Contacts whose attribute `key` is not a list holding `value`, those without the key
    included: on PostgreSQL NOT (containment) is NULL where the key is missing, so the
    negation goes through a subquery of the ones that do hold it."""
    if connection.vendor == "postgresql":
        return ~Q(pk__in=Contact.objects.filter(list_includes(key, value)).values("pk"))
    return ~list_includes(key, value)


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
    if op == "includes":
        return list_includes(key, require_text(rule.value))
    if op == "not_includes":
        return list_excludes(key, require_text(rule.value))
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
