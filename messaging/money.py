"""Money as a person reads it: the amount in the active language's number format, with its
currency (CLDR data through Babel). 1234.5 EUR is "€1,234.50" in English, "1 234,50 €" in
French. Figures that carry no currency of their own (attributed revenue) are in
settings.MAILROOM_CURRENCY."""

from decimal import Decimal, InvalidOperation

from babel.core import UnknownLocaleError
from babel.numbers import format_currency, format_decimal
from django.conf import settings
from django.utils.translation import get_language, to_locale


def _locale(locale: str | None) -> str:
    return locale or to_locale(get_language() or settings.LANGUAGE_CODE)


def format_money(amount, currency: str | None = None, *, locale: str | None = None) -> str:
    """`amount` (Decimal, int, float or numeric string) in `currency` for the active language;
    "-" when it is not a number."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError, TypeError):
        return "-"
    if not value.is_finite():
        return "-"
    code = (currency or settings.MAILROOM_CURRENCY or "EUR").strip().upper()
    try:
        return format_currency(value, code, locale=_locale(locale))
    except (UnknownLocaleError, ValueError):
        return format_currency(value, code, locale="en")


def format_number(value, *, locale: str | None = None, digits: int = 1) -> str:
    """A plain number with at most `digits` decimals in the active language's format."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return "-"
    pattern = "#,##0." + "#" * digits if digits else "#,##0"
    try:
        return format_decimal(number, format=pattern, locale=_locale(locale))
    except (UnknownLocaleError, ValueError):
        return format_decimal(number, format=pattern, locale="en")
