"""Automations in the contact's own time zone: quiet hours push a night-time marketing send
to the morning, and local times hold across the daylight-saving changes (Europe/Paris moves
to CEST on Sunday 29 March 2026 and back to CET on Sunday 25 October 2026)."""

from datetime import UTC, datetime

import pytest

from marketing.automations.actions import create_automation_from_preset
from marketing.events import track_event
from marketing.segments.actions import refresh_segment
from messaging.models import OutboxMessage
from tests.marketing.conftest import START, go_live, inbox
from tests.marketing.test_automations import automation, person, send

pytestmark = pytest.mark.django_db


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- quiet hours -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "signed_up_at, due_at, morning",
    [
        # winter (CET, UTC+1): 03:00 Paris is 02:00 UTC, 08:30 Paris is 07:30 UTC
        (utc(2026, 3, 3, 20, 0), utc(2026, 3, 4, 2, 0), utc(2026, 3, 4, 7, 30)),
        # summer (CEST, UTC+2): 03:00 Paris is 01:00 UTC, 08:30 Paris is 06:30 UTC
        (utc(2026, 6, 2, 20, 0), utc(2026, 6, 3, 1, 0), utc(2026, 6, 3, 6, 30)),
    ],
    ids=["winter", "summer"],
)
def test_a_marketing_send_due_at_3am_local_moves_to_the_end_of_quiet_hours(catalog, clock, tick, signed_up_at, due_at, morning, committed):
    # given quiet hours 22:00-08:30, and a flow whose send falls due at 03:00 in Paris
    flow = automation(
        steps=[{"kind": "wait", "config": {"until": {"time": "03:00"}}}, send()],
        quiet_hours_start="22:00",
        quiet_hours_end="08:30",
    )
    ada = person(topics=catalog, timezone="Europe/Paris")
    clock.move_to(signed_up_at)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    assert flow.runs.get().next_run_at == due_at
    # when 03:00 Paris comes, the send step runs
    clock.move_to(due_at)
    tick()
    # then the message is queued for 08:30 Paris, not sent at night
    message = OutboxMessage.objects.get()
    assert message.scheduled_at == morning and inbox() == []
    assert "Quiet hours" in flow.runs.get().logs.get(outcome="sent").detail
    clock.move_to(morning.replace(minute=29))
    tick()
    assert inbox() == []
    clock.move_to(morning)
    tick()
    assert [m.to_address for m in inbox()] == ["ada@example.com"]


def test_quiet_hours_end_on_the_night_the_clocks_go_forward(catalog, clock, tick, committed):
    # given quiet hours 21:00-08:00 and a Parisian signing up at 03:30 CEST on 29 March
    # (01:30 UTC: the clocks jumped from 02:00 to 03:00 an hour and a half earlier)
    automation(steps=[send()], quiet_hours_start="21:00", quiet_hours_end="08:00")
    ada = person(topics=catalog, timezone="Europe/Paris")
    clock.move_to(utc(2026, 3, 29, 1, 30))
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    # then the message waits for 08:00 CEST, which is 06:00 UTC (not 07:00 as the day before)
    assert OutboxMessage.objects.get().scheduled_at == utc(2026, 3, 29, 6, 0)


# --- daylight saving ---------------------------------------------------------------------------
def test_weekly_progress_stays_at_nine_local_across_both_dst_changes(catalog, clock, tick):
    # given the weekly-progress preset (Monday 09:00 local) and an enrolled Parisian
    flow = go_live(create_automation_from_preset(actor=None, key="weekly-progress"))
    paris = person("paris@example.com", consent=["progress-reports"], topics=catalog, timezone="Europe/Paris")
    track_event(contact=paris, name="enrollment", occurred_at=START)
    refresh_segment(segment=flow.audience)
    mondays = [
        (utc(2026, 3, 23, 8, 0), "CET: 09:00 Paris is 08:00 UTC"),
        (utc(2026, 3, 30, 7, 0), "CEST from 29 March: 09:00 Paris is 07:00 UTC"),
        (utc(2026, 10, 19, 7, 0), "still CEST"),
        (utc(2026, 10, 26, 8, 0), "CET again from 25 October: 09:00 Paris is 08:00 UTC"),
    ]
    for sends, (nine_local, why) in enumerate(mondays, start=1):
        # when the minute before 09:00 local comes, nothing is sent
        clock.move_to(nine_local.replace(hour=nine_local.hour - 1, minute=59))
        tick()
        assert len(inbox()) == sends - 1, why
        # then at 09:00 local exactly one report goes out
        clock.move_to(nine_local)
        tick()
        tick()
        assert len(inbox()) == sends, why
    sent = OutboxMessage.objects.filter(status="sent").order_by("id").values_list("sent_at", flat=True)
    assert list(sent) == [nine_local for nine_local, _why in mondays]
    assert flow.runs.count() == 4


@pytest.mark.parametrize(
    "waits_from, nine_local",
    [
        # Saturday 13:00 CET → Sunday 29 March 09:00 CEST = 07:00 UTC
        (utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 7, 0)),
        # 01:30 CET on 29 March, before the jump at 02:00 → 09:00 CEST the same morning
        (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 7, 0)),
        # Saturday 14:00 CEST → Sunday 25 October 09:00 CET = 08:00 UTC
        (utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 8, 0)),
        # 02:30 CEST on 25 October, an hour the clocks will repeat → 09:00 CET the same morning
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 8, 0)),
    ],
    ids=["spring-day-before", "spring-same-night", "autumn-day-before", "autumn-same-night"],
)
def test_wait_until_nine_local_across_a_dst_change(catalog, clock, tick, waits_from, nine_local, committed):
    flow = automation(steps=[{"kind": "wait", "config": {"until": {"time": "09:00"}}}, send()])
    ada = person(topics=catalog, timezone="Europe/Paris")
    clock.move_to(waits_from)
    with committed():
        track_event(contact=ada, name="signed_up")
    tick()
    assert flow.runs.get().next_run_at == nine_local
    clock.move_to(nine_local.replace(hour=nine_local.hour - 1, minute=59))
    tick()
    assert inbox() == []
    clock.move_to(nine_local)
    tick()
    assert list(OutboxMessage.objects.filter(status="sent").values_list("sent_at", flat=True)) == [nine_local]
