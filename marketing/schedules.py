"""Marketing's schedules, registered into messaging's list (see messaging.schedules)."""

from datetime import time

from django_q.models import Schedule

from messaging.schedules import next_time_of_day, register_schedule, register_task


def register() -> None:
    # Kicks enqueued after a commit (messaging.delivery.work.after_commit).
    register_task("marketing.tasks.fan_out_campaign")
    register_task("marketing.tasks.run_automation_steps")
    register_schedule(
        {"name": "refresh dynamic segments", "func": "marketing.tasks.refresh_dynamic_segments", "schedule_type": Schedule.DAILY},
        first_run=lambda: next_time_of_day(time(2, 0)),
    )
    # Automations: trigger scans and due steps. Step timing lives in AutomationRun.next_run_at,
    # so a restarted cluster picks up exactly where the last committed step left off.
    register_schedule(
        {"name": "run automations", "func": "marketing.tasks.run_automations", "schedule_type": Schedule.MINUTES, "minutes": 1}
    )
    # Starts due campaigns, resumes fan-outs, picks A/B winners, guardrails, conversions.
    register_schedule({"name": "run campaigns", "func": "marketing.tasks.run_campaigns", "schedule_type": Schedule.MINUTES, "minutes": 1})
    # Analytics rollups: today and yesterday again, so late events are counted.
    register_schedule(
        {
            "name": "roll up analytics",
            "func": "marketing.analytics.tasks.roll_up_analytics",
            "schedule_type": Schedule.MINUTES,
            "minutes": 15,
        }
    )
