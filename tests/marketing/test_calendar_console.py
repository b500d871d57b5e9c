"""The campaign calendar through HTTP as a marketer: the month grid (7 columns × its weeks),
the week view, the today marker, a colour class per campaign state, navigation, bad
parameters answered with a notice (never a 500), the console's time zone, the empty state.
Its look in a browser (equal cells, colours, drop highlight) is tests/e2e/test_calendar.py."""

import calendar as pycalendar
from datetime import UTC, date, datetime, timedelta

import lxml.html
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketing.automations.actions import create_automation
from marketing.campaigns.actions import create_campaign
from marketing.models import Campaign
from messaging.delivery.outbox import enqueue_message
from messaging.metadata import AUTOMATION_KEY
from tests.marketing.conftest import at, seed_calendar

pytestmark = pytest.mark.django_db
URL = "/admin/marketing/campaign/calendar/"


def planned(marketer, newsletter, segment, version, *, name: str, send_at: datetime) -> Campaign:
    """A draft with a send time: the calendar shows it."""
    return create_campaign(
        actor=marketer,
        name=name,
        topic=newsletter,
        template_version=version,
        segments=[segment],
        send_mode=Campaign.SendMode.AT,
        send_at=send_at,
    )


def open_calendar(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200
    return lxml.html.fromstring(response.content.decode())


def cells(page) -> list:
    return page.xpath('//*[@data-testid="calendar-day"]')


def classes(element) -> set[str]:
    return set(element.get("class", "").split())


def notices(page) -> list[str]:
    return [" ".join(n.text_content().split()) for n in page.xpath('//*[@data-testid="calendar-notice"]')]


def test_the_month_is_a_grid_of_seven_columns_by_its_weeks_with_a_date_in_each_cell(client, marketer):
    client.force_login(marketer)
    page = open_calendar(client, date="2026-03-15")
    weeks = pycalendar.Calendar(firstweekday=0).monthdatescalendar(2026, 3)  # 23 Feb … 5 Apr: 6 weeks
    days = [cell.get("data-day") for cell in cells(page)]
    assert len(weeks) == 6 and len(days) == 7 * 6
    assert days == [d.isoformat() for week in weeks for d in week]
    assert page.xpath('//*[@data-testid="calendar-grid"]')[0].get("data-weeks") == "6"
    assert [d.text_content() for d in page.xpath('//*[contains(@class, "mr-cal__weekdays")]/div')] == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
    ]
    # the days of February and April are marked as outside the month; March's are not
    outside = {cell.get("data-day") for cell in cells(page) if "is-outside" in classes(cell)}
    assert outside == {d.isoformat() for week in weeks for d in week if d.month != 3}
    assert page.xpath('string(//*[@data-testid="calendar-title"])').strip() == "March 2026"
    # the page loads our stylesheet, since Unfold's compiled CSS has no such classes
    assert page.xpath('//link[@rel="stylesheet"][contains(@href, "mailroom/calendar.css")]')


def test_the_week_view_lists_the_seven_days_of_the_week_from_monday(client, marketer):
    client.force_login(marketer)
    page = open_calendar(client, view="week", date="2026-03-05")  # a Thursday
    assert [cell.get("data-day") for cell in cells(page)] == [f"2026-03-{d:02}" for d in range(2, 9)]
    assert " ".join(page.xpath('string(//*[@data-testid="calendar-title"])').split()) == "2 March – 8 March 2026"
    assert page.xpath('//*[@data-testid="calendar-week-link"]')[0].get("aria-current") == "page"
    assert page.xpath('//*[@data-testid="calendar-month-link"]')[0].get("aria-current") is None
    assert not page.xpath('//*[contains(@class, "mr-cal__weekdays")]')  # each day names itself
    assert classes(page.xpath('//*[@data-testid="campaign-calendar"]')[0]) >= {"mr-cal", "mr-cal--week"}


def test_previous_and_next_move_by_a_month_or_a_week_and_keep_the_filters(client, marketer, newsletter):
    client.force_login(marketer)
    month = open_calendar(client, date="2026-01-31", channel="email", topic=newsletter.pk)
    link = {name: month.xpath(f'//*[@data-testid="calendar-{name}"]')[0].get("href") for name in ("previous", "next")}
    assert link["previous"] == f"?view=month&date=2025-12-01&channel=email&topic={newsletter.pk}"
    assert link["next"] == f"?view=month&date=2026-02-01&channel=email&topic={newsletter.pk}"
    week = open_calendar(client, view="week", date="2026-01-01")
    assert week.xpath('//*[@data-testid="calendar-previous"]')[0].get("href") == "?view=week&date=2025-12-22"
    assert week.xpath('//*[@data-testid="calendar-next"]')[0].get("href") == "?view=week&date=2026-01-05"
    assert week.xpath('//*[@data-testid="calendar-month-link"]')[0].get("href") == "?view=month&date=2026-01-01"


def test_todays_cell_carries_the_today_marker_and_no_other_does(client, marketer):
    client.force_login(marketer)
    today = timezone.localdate().isoformat()
    for params in ({}, {"view": "week"}):
        page = open_calendar(client, **params)
        marked = [cell for cell in cells(page) if "is-today" in classes(cell)]
        assert [cell.get("data-day") for cell in marked] == [today]
        assert marked[0].get("aria-current") == "date"
        assert len(page.xpath('//*[@data-testid="calendar-today-marker"]')) == 1
    # a month that does not hold today has no marker
    assert not open_calendar(client, date="2001-06-01").xpath('//*[contains(@class, "is-today")]')


def test_each_campaign_gets_the_colour_class_of_its_state_and_only_a_scheduled_one_can_be_dragged(
    client, marketer, approver, newsletter, segment, version
):
    today = timezone.localdate()
    seeded = seed_calendar(marketer=marketer, approver=approver, topic=newsletter, segment=segment, version=version, today=today)
    assert {c.state for c in seeded.values()} == set(Campaign.State.values) - {Campaign.State.REJECTED}
    client.force_login(marketer)
    for state, campaign in seeded.items():
        page = open_calendar(client, view="week", date=timezone.localdate(campaign.send_at).isoformat())
        [chip] = page.xpath(f'//*[@data-campaign="{campaign.pk}"]')
        assert f"mr-cal-chip--{state}" in classes(chip) and chip.get("data-state") == state
        assert chip.xpath("ancestor::*[@data-day]")[0].get("data-day") == timezone.localdate(campaign.send_at).isoformat()
        assert (chip.get("draggable") == "true") == (state == "scheduled")
        assert chip.get("href") == f"/admin/marketing/campaign/{campaign.pk}/overview/"
        assert str(Campaign.State(state).label) in chip.text_content()  # the week view names the state
    # and the legend names every state with the same class
    page = open_calendar(client)
    legend = {li.get("data-state"): li for li in page.xpath('//*[@data-testid="calendar-legend"]/li')}
    assert set(legend) == set(seeded)
    assert all(f"mr-cal-chip--{state}" in classes(li) for state, li in legend.items())


def test_times_and_days_are_those_of_the_consoles_time_zone(client, marketer, newsletter, segment, version, settings):
    # given a campaign on a Sunday at 23:30 UTC, which is Monday 00:30 in Paris (winter time)
    january = date(timezone.now().year + 1, 1, 1)
    sunday = january + timedelta(days=6 - january.weekday())
    send_at = datetime.combine(sunday, datetime.min.time(), UTC) + timedelta(hours=23, minutes=30)
    campaign = planned(marketer, newsletter, segment, version, name="Late", send_at=send_at)
    settings.TIME_ZONE = "Europe/Paris"
    client.force_login(marketer)
    # then it is in Monday's cell of the next week, at 00:30 (the week starts at midnight in Paris)
    monday = sunday + timedelta(days=1)
    page = open_calendar(client, view="week", date=monday.isoformat())
    [chip] = page.xpath(f'//*[@data-campaign="{campaign.pk}"]')
    assert chip.xpath("ancestor::*[@data-day]")[0].get("data-day") == monday.isoformat()
    assert chip.xpath('string(.//*[@class="mr-cal-chip__time"])') == "00:30"
    assert "Times are in Europe/Paris." in " ".join(page.text_content().split())
    # and not in the week of the Sunday it is in UTC
    assert not open_calendar(client, view="week", date=sunday.isoformat()).xpath("//*[@data-campaign]")


@pytest.mark.parametrize(
    ("params", "notice"),
    [
        ({"date": "2026-13-45"}, "“2026-13-45” is not a date: give one as YYYY-MM-DD. Showing the current month instead."),
        ({"date": "<script>x</script>"}, "“<script>x</script>” is not a date"),
        ({"date": "0001-01-01"}, "The calendar covers 1900 to 2999. Showing the current month instead."),
        ({"date": "9999-12-31"}, "The calendar covers 1900 to 2999."),
        ({"view": "year"}, "There is no “year” view: showing the month."),
        ({"channel": "fax"}, "There is no “fax” channel: showing every channel."),
        ({"topic": "99999"}, "There is no such topic: showing every topic."),
        ({"topic": "1e3"}, "There is no such topic: showing every topic."),
    ],
)
def test_bad_parameters_get_a_clear_notice_and_the_current_month(client, marketer, params, notice):
    client.force_login(marketer)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert b"<script>x</script>" not in response.content  # what was typed is escaped
    page = lxml.html.fromstring(response.content.decode())
    [shown] = notices(page)
    assert shown.startswith(notice)
    today = timezone.localdate()
    if "date" in params or "view" in params:
        assert page.xpath('string(//*[@data-testid="calendar-title"])').strip() == today.strftime("%B %Y")
        assert len(cells(page)) == 7 * len(pycalendar.Calendar().monthdatescalendar(today.year, today.month))
        assert any("is-today" in classes(cell) for cell in cells(page))


def test_a_filter_that_was_refused_is_not_carried_into_the_links(client, marketer):
    client.force_login(marketer)
    page = open_calendar(client, date="2026-03-01", channel="fax")
    assert page.xpath('//*[@data-testid="calendar-next"]')[0].get("href") == "?view=month&date=2026-04-01"
    assert open_calendar(client, date="2026-03-01").xpath('//*[@data-testid="calendar-notice"]') == []


def test_an_empty_period_says_so_and_a_busy_day_shows_three_campaigns_and_a_link_to_its_week(
    client, marketer, newsletter, segment, version
):
    client.force_login(marketer)
    day = timezone.localdate() + timedelta(days=40)
    empty = open_calendar(client, date=day.isoformat())
    assert "No campaign or automation send in this month." in empty.xpath('string(//*[@data-testid="calendar-empty"])')
    for hour in range(9, 14):
        planned(marketer, newsletter, segment, version, name=f"Busy {hour}", send_at=at(day, hour))
    page = open_calendar(client, date=day.isoformat())
    assert not page.xpath('//*[@data-testid="calendar-empty"]')
    [cell] = page.xpath(f'//*[@data-day="{day.isoformat()}"]')
    assert [" ".join(chip.text_content().split()) for chip in cell.xpath(".//*[@data-campaign]")] == [
        "09:00 Busy 9, Draft",
        "10:00 Busy 10, Draft",
        "11:00 Busy 11, Draft",
    ]
    [more] = cell.xpath('.//*[@data-testid="calendar-more"]')
    assert more.text_content().strip() == "+2 more" and more.get("href") == f"?view=week&date={day.isoformat()}"
    # the week view lists all five
    assert len(open_calendar(client, view="week", date=day.isoformat()).xpath("//*[@data-campaign]")) == 5


def test_the_page_costs_the_same_queries_for_one_campaign_or_many(
    client, marketer, newsletter, segment, version, django_assert_max_num_queries
):
    client.force_login(marketer)
    day = timezone.localdate() + timedelta(days=10)
    planned(marketer, newsletter, segment, version, name="One", send_at=at(day, 9))
    with CaptureQueriesContext(connection) as one:
        open_calendar(client, view="week", date=day.isoformat())
    for n in range(6):
        planned(marketer, newsletter, segment, version, name=f"More {n}", send_at=at(day, 10 + n))
    with django_assert_max_num_queries(len(one)):
        page = open_calendar(client, view="week", date=day.isoformat())
    assert len(page.xpath("//*[@data-campaign]")) == 7


def test_automation_sends_are_named_and_link_to_their_automation(client, marketer):
    flow = create_automation(actor=marketer, name="Welcome series", trigger_type="event", trigger={"event": "signed_up"})
    tomorrow = timezone.now() + timedelta(days=1)
    for address in ("ada@example.com", "bob@example.com"):
        enqueue_message(channel="email", to=address, text="x", scheduled_at=tomorrow, metadata={AUTOMATION_KEY: flow.pk})
    client.force_login(marketer)
    page = open_calendar(client, view="week", date=timezone.localdate(tomorrow).isoformat())
    [other] = page.xpath('//*[@data-testid="calendar-other"]')
    assert " ".join(other.text_content().split()) == "Welcome series · 2"
    assert other.xpath(".//a")[0].get("href") == f"/admin/marketing/automation/{flow.pk}/flow/"
    assert other.xpath("ancestor::*[@data-day]")[0].get("data-day") == timezone.localdate(tomorrow).isoformat()
