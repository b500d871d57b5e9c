"""The campaign calendar in a real browser: the month is a grid of equal cells, each state
has its own colour, today is marked, the day under a dragged campaign lights up, and the
drop still reschedules (the moved campaign needs a new approval). Screenshots go to
test-results/screenshots/calendar-*.png (copied to docs/screenshots/)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from marketing.campaigns.actions import create_campaign
from marketing.models import Campaign
from tests.conftest import RESULTS
from tests.marketing.conftest import SENDER, at, make_people, make_segment, make_version, seed_calendar

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = RESULTS / "screenshots"
URL = "/admin/marketing/campaign/calendar/"


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"calendar-{name}.png"), full_page=True)


def background(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).backgroundColor")


def box_shadow(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).boxShadow")


@pytest.fixture
def seeded(marketer, approver, newsletter) -> dict[str, Campaign]:
    """A campaign in each state around today (the sending one today), and five drafts today."""
    people = make_people(newsletter, 2, prefix="cal")
    segment = make_segment("Calendar", people)
    version = make_version(marketer, newsletter)
    today = timezone.localdate()
    campaigns = seed_calendar(marketer=marketer, approver=approver, topic=newsletter, segment=segment, version=version, today=today)
    for hour, name in zip(range(13, 18), ("Tips #1", "Tips #2", "Tips #3", "Tips #4", "Tips #5"), strict=True):
        create_campaign(
            actor=marketer,
            name=name,
            topic=newsletter,
            template_version=version,
            segments=[segment],
            send_mode=Campaign.SendMode.AT,
            send_at=at(today, hour),
        )
    return campaigns


def test_month_grid_has_equal_cells_a_colour_per_state_and_a_today_marker(console_login, live_server, marketer, seeded):
    page = console_login(marketer)
    page.goto(f"{live_server.url}{URL}")
    today = timezone.localdate()
    cells = page.get_by_test_id("calendar-day")
    boxes = [cells.nth(i).bounding_box() for i in range(cells.count())]
    weeks = int(page.get_by_test_id("calendar-grid").get_attribute("data-weeks"))
    assert len(boxes) == 7 * weeks

    # a real grid: 7 columns and one row per week, every cell the same size, even the busy one
    assert len({round(b["x"]) for b in boxes}) == 7 and len({round(b["y"]) for b in boxes}) == weeks
    heights, widths = [b["height"] for b in boxes], [b["width"] for b in boxes]
    assert max(heights) - min(heights) <= 1 and max(widths) - min(widths) <= 1.5
    busy = page.locator(f'[data-day="{today.isoformat()}"]')
    assert busy.get_by_test_id("calendar-more").inner_text() == "+3 more"  # six today, three shown
    assert busy.bounding_box()["height"] > 7 * 16  # taller than the 7rem minimum, and so is every other row
    assert min(heights) > 7 * 16

    # a colour per state: the legend's eight differ, and each campaign wears its state's
    legend = {li.get_attribute("data-state"): background(li) for li in page.get_by_test_id("calendar-legend").locator("li").all()}
    assert len(legend) == 8 and len(set(legend.values())) == 8
    assert "rgba(0, 0, 0, 0)" not in legend.values()
    chips = page.locator("[data-campaign]")
    assert chips.count() >= 3
    for chip in chips.all():
        assert background(chip) == legend[chip.get_attribute("data-state")]

    # today: its cell is marked (accent edge) and its number sits in a filled disc
    expect(busy).to_have_class(re.compile(r"\bis-today\b"))
    assert box_shadow(busy) != "none" and box_shadow(page.locator("[data-day]:not(.is-today)").first) == "none"
    assert background(busy.locator(".mr-cal__daynum")) != "rgba(0, 0, 0, 0)"
    shot(page, "month")

    # in Unfold's dark mode (it follows the system's) the calendar has its dark colours
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    dark = {li.get_attribute("data-state"): background(li) for li in page.get_by_test_id("calendar-legend").locator("li").all()}
    assert len(set(dark.values())) == 8 and not set(dark.values()) & set(legend.values())
    assert background(page.locator("[data-day]:not(.is-today):not(.is-outside)").first) != "rgb(255, 255, 255)"
    shot(page, "month-dark")


def test_week_view_lists_the_days_with_times_and_states(console_login, live_server, marketer, seeded):
    page = console_login(marketer)
    page.goto(f"{live_server.url}{URL}")
    page.get_by_test_id("calendar-week-link").click()
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    cells = page.get_by_test_id("calendar-day")
    expect(cells).to_have_count(7)
    assert [cells.nth(i).get_attribute("data-day") for i in range(7)] == [(monday + timedelta(days=n)).isoformat() for n in range(7)]
    boxes = [cells.nth(i).bounding_box() for i in range(7)]
    assert len({round(b["y"]) for b in boxes}) == 1 and max(b["height"] for b in boxes) - min(b["height"] for b in boxes) <= 1
    # the week shows every campaign of the day (no "+2 more"), with its time and state
    today_cell = page.locator(f'[data-day="{today.isoformat()}"]')
    expect(today_cell.locator("[data-campaign]")).to_have_count(6)
    expect(today_cell.locator("[data-campaign]", has_text="Tips #5")).to_contain_text("17:00")
    expect(today_cell.locator("[data-campaign]", has_text="Tips #5")).to_contain_text("Draft")
    # each campaign is a link: it takes the keyboard focus and Enter opens it
    first = today_cell.locator("[data-campaign]").first
    first.focus()
    expect(first).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/overview/" in page.url
    page.go_back()
    shot(page, "week")


def test_dragging_lights_the_day_under_it_and_the_drop_reschedules(console_login, live_server, marketer, seeded):
    campaign = seeded["scheduled"]
    source_day = timezone.localdate(campaign.send_at)
    target_day = source_day + timedelta(days=1 if source_day.weekday() < 6 else -1)  # in the same week, still ahead
    page = console_login(marketer)
    page.goto(f"{live_server.url}{URL}?view=week&date={source_day.isoformat()}")
    source = page.locator(f'[data-campaign="{campaign.pk}"]')
    target = page.locator(f'[data-day="{target_day.isoformat()}"]')
    expect(source).to_have_attribute("draggable", "true")
    before = background(target)

    s, t = source.bounding_box(), target.bounding_box()
    page.mouse.move(s["x"] + s["width"] / 2, s["y"] + s["height"] / 2)
    page.mouse.down()
    page.mouse.move(t["x"] + t["width"] / 2, t["y"] + 40, steps=5)
    page.mouse.move(t["x"] + t["width"] / 2, t["y"] + 60, steps=5)
    expect(target).to_have_class(re.compile(r"\bis-drop-target\b"))
    assert "inset" in box_shadow(target) and background(target) != before
    assert page.locator(".is-drop-target").count() == 1
    shot(page, "drag")
    with page.expect_navigation():
        page.mouse.up()

    campaign.refresh_from_db()
    # the schedule is part of what was approved: the moved campaign needs a new approval
    assert timezone.localdate(campaign.send_at) == target_day and campaign.state == Campaign.State.DRAFT
    expect(page.get_by_text("it is a draft again and needs a new approval")).to_be_visible()
    moved = page.locator(f'[data-day="{target_day.isoformat()}"] [data-campaign="{campaign.pk}"]')
    expect(moved).to_have_attribute("data-state", "draft")
    expect(moved).not_to_have_attribute("draggable", "true")
    assert page.locator(".is-drop-target").count() == 0
