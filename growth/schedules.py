"""Growth's daily jobs, registered into messaging's schedule list."""

from datetime import time

from django_q.models import Schedule

from messaging.schedules import next_time_of_day, register_schedule

DAILY = [
    ("growth: referral rewards", "growth.tasks.process_referrals", time(1, 0)),
    ("growth: loyalty points expiry", "growth.tasks.expire_loyalty_points", time(3, 0)),
    ("growth: gift card expiry", "growth.tasks.expire_cards", time(4, 0)),
]


def register() -> None:
    for name, func, at in DAILY:
        register_schedule({"name": name, "func": func, "schedule_type": Schedule.DAILY}, first_run=lambda at=at: next_time_of_day(at))
