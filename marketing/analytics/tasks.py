"""django-q2 entry points for analytics (scheduled from marketing/schedules.py)."""

from marketing.analytics.rollups import roll_up_recent


def roll_up_analytics(days: int = 2) -> int:
    """Every 15 minutes: recompute the last `days` local days of DailyStat rows."""
    return roll_up_recent(days=days)
