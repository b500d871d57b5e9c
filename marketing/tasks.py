"""django-q2 entry points for marketing. Arguments are ids; each reloads and calls an action."""

# Named by dotted path in marketing.schedules (marketing.tasks.<name>), so they are kept here.
from marketing.automations.tasks import run_automation_steps, run_automations  # noqa: F401
from marketing.campaigns.tasks import fan_out_campaign, run_campaigns  # noqa: F401
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
