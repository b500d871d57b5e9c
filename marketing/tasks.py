"""django-q2 entry points for marketing. Arguments are ids; each reloads and calls an action."""

from marketing.campaigns.tasks import fan_out_campaign, run_campaigns  # noqa: F401  (dotted paths used by schedules)
from marketing.models import Segment
from marketing.segments.actions import refresh_dynamic_segments as refresh_all
from marketing.segments.actions import refresh_segment


def refresh_dynamic_segments() -> int:
    return refresh_all()


def refresh_one_segment(segment_id: int) -> int:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        return 0
    return refresh_segment(segment=segment).member_count


def run_automations(*, limit: int = 200) -> int:
    """The minute schedule: trigger scans (schedule, date, segment entry), then due steps."""
    from marketing.automations.tasks import run_automations as run

    return run(limit=limit)


def run_automation_steps(*, limit: int = 200) -> int:
    """The kick after an event starts runs: due steps only, no scans."""
    from marketing.automations.tasks import run_automation_steps as run

    return run(limit=limit)
