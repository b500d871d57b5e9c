"""Ids typed into a query string or a form: one reading for every filter.

`str.isdigit` is true for "²" and "٤" (which `int` refuses or reads as 4), and a 20-digit
number overflows the database's integer: both were 500s wherever a filter trusted isdigit."""

MAX_ID_DIGITS = 18  # below 2**63: fits PostgreSQL's bigint and SQLite's INTEGER


def parse_id(value: str | None) -> int | None:
    """The id `value` names (ASCII digits, at most 18 of them), else None."""
    value = value or ""
    if value.isascii() and value.isdigit() and len(value) <= MAX_ID_DIGITS:
        return int(value)
    return None
