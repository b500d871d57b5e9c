"""A rule's value, as a person typed it, turned into what a field compares: a number, a
number of days, a date, a list. A bad value raises `RuleValueError` with a readable message."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.translation import gettext as _

from marketing.segments.fields.registry import RuleValueError

MAX_DAYS = 3650


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


def days_ago(days: int) -> datetime:
    return timezone.now() - timedelta(days=days)
