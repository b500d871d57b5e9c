"""How automations compare values: trigger filters, conditions and exit matches read a
dotted path from JSON (`lookup`) and test it with an operator (`compare`). Pure functions."""

from typing import Any

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists", "not_exists", "in")


def number(value: Any) -> float | None:
    """`value` as a float, or None when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        return actual is not None and actual != ""
    if op == "not_exists":
        return actual is None or actual == ""
    if op == "eq":
        return actual == expected or (actual is not None and str(actual) == str(expected))
    if op == "ne":
        return not compare(actual, "eq", expected)
    if op == "contains":
        return actual is not None and (expected in actual if isinstance(actual, list) else str(expected) in str(actual))
    if op == "in":
        return isinstance(expected, list) and (actual in expected or str(actual) in map(str, expected))
    left, right = number(actual), number(expected)
    if left is None or right is None:
        return False
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}.get(op, False)


def lookup(data: dict, path: str) -> Any:
    """`a.b.c` through nested dicts; None when any part is missing."""
    value: Any = data
    for part in str(path).split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
