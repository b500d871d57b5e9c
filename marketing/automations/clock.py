"""Wall-clock helpers for automations: a contact's time zone, "09:00" settings, the next
local occurrence of a time, and dates read from JSON. Pure functions, no queries."""

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from messaging.models import Contact


def zone_of(contact: Contact) -> ZoneInfo:
    try:
        return ZoneInfo(contact.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_clock(value: str) -> time:
    hours, _sep, minutes = str(value).partition(":")
    return time(int(hours), int(minutes or 0))


def next_local_time(*, after: datetime, zone: ZoneInfo, at: time, weekday: int | None = None) -> datetime:
    """The first wall-clock `at` (on `weekday`, 0 = Monday) strictly after `after`, in `zone`."""
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    for _day in range(8):
        if candidate > local and (weekday is None or candidate.weekday() == weekday):
            return candidate.astimezone(ZoneInfo("UTC"))
        candidate = datetime.combine(candidate.date() + timedelta(days=1), at, tzinfo=zone)
    raise AssertionError("unreachable")


def as_datetime(value: Any, zone: ZoneInfo) -> datetime | None:
    """An ISO datetime (naive ones are local to the contact) or a date (midnight local)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        parsed = datetime.combine(day, time(0)) if day else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=zone)
    return parsed
