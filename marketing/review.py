"""What the reviewer saw: approving a campaign or a fan-out automation names the submission
it looked at, so a change (and new submission) made while the approval page was open is
never approved by a click on the old page. The console's approve forms carry the token of
the submission they show; the API takes `submitted_at` as read from the object."""

from datetime import datetime

from django.utils.dateparse import parse_datetime


def submission_token(submitted_at: datetime | None) -> str:
    """The submission as the approve forms carry it (exact to the microsecond, any zone)."""
    if submitted_at is None:
        return ""
    return f"{int(submitted_at.timestamp())}.{submitted_at.microsecond:06d}"


def saw_this_submission(submitted_at: datetime | None, seen: str | datetime | None) -> bool:
    """True when `seen` (a token, an ISO date-time or a datetime) names this submission;
    None means the caller did not say (an API client that approves blind)."""
    if seen is None:
        return True
    if isinstance(seen, str) and not seen.count(":"):
        return seen == submission_token(submitted_at)
    moment = parse_datetime(seen) if isinstance(seen, str) else seen
    return moment is not None and submitted_at is not None and moment.tzinfo is not None and moment == submitted_at
