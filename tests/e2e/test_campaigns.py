"""Campaigns in a real browser: a marketer creates and submits, an approver approves, the
author cannot approve her own, the calendar shows it, it sends to the sandbox and the
report shows the numbers. Screenshots go to test-results/screenshots/campaign-*.png."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from marketing.campaigns.actions import approve_campaign, create_campaign, schedule_campaign, submit_campaign
from marketing.campaigns.tasks import run_campaigns
from marketing.events import record_order
from marketing.models import Campaign
from messaging.delivery.sending import send_due_messages
from messaging.models import DeliveryEvent, OutboxMessage, SandboxMessage
from tests.conftest import RESULTS
from tests.marketing.conftest import SENDER, make_people, make_segment, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = RESULTS / "screenshots"


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"campaign-{name}.png"), full_page=True)


def log_in(page: Page, live_server, user) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-" + user.username)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_marketer_creates_approver_approves_it_sends_and_the_report_shows_numbers(page, live_server, marketer, approver, newsletter):
    # Given an audience of five subscribed contacts and a marketing template
    people = make_people(newsletter, 5, prefix="reader")
    segment = make_segment("Readers", people)
    version = make_version(marketer, newsletter)

    # When the marketer creates a campaign through the wizard
    log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/admin/marketing/campaign/")
    page.get_by_role("link", name="New campaign").click()
    page.fill("#id_name", "Spring sale")
    page.select_option("#id_topic", str(newsletter.pk))
    page.get_by_test_id("wizard-next").click()
    page.check(f'input[name=segments][value="{segment.pk}"]')
    page.get_by_test_id("wizard-next").click()
    page.select_option("#id_template_version", str(version.pk))
    shot(page, "1-wizard")
    page.get_by_test_id("wizard-save").click()

    # Then the overview shows the draft and its dry run
    expect(page.get_by_test_id("campaign-state")).to_have_attribute("data-state", "draft")
    expect(page.get_by_test_id("dry-run-eligible")).to_have_text("5")
    expect(page.get_by_test_id("sample-render")).to_have_count(5)
    shot(page, "2-draft-dry-run")
    campaign = Campaign.objects.get(name="Spring sale")

    # When she submits it
    page.locator('button[data-action="submit"]').click()
    expect(page.get_by_test_id("campaign-state")).to_have_attribute("data-state", "pending_approval")
    # Then she has no approve button, and a crafted approve POST is refused
    expect(page.locator('button[data-action="approve"]')).to_have_count(0)
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    crafted = page.request.post(
        f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/do/approve/",
        form={"csrfmiddlewaretoken": csrf},
        headers={"X-CSRFToken": csrf, "Referer": live_server.url + "/admin/"},
    )
    assert crafted.status == 403
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PENDING_APPROVAL
    shot(page, "3-submitted")
    assert OutboxMessage.objects.filter(to_address=approver.email, subject__startswith="Waiting for your approval").exists()

    # When the approver opens the queue and approves
    log_in(page, live_server, approver)
    page.goto(f"{live_server.url}/admin/marketing/campaign/approvals/")
    item = page.get_by_test_id("approval-item")
    expect(item).to_have_count(1)
    expect(item.get_by_test_id("audience-count")).to_have_text("5")
    expect(item.locator("iframe[sandbox]")).to_have_count(1)
    shot(page, "4-approval-queue")
    item.locator('button[data-action="approve"]').click()
    expect(page.get_by_test_id("approval-empty")).to_be_visible()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.APPROVED and campaign.approved_by == approver

    # When the marketer schedules it, the calendar shows it
    log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/overview/")
    page.locator('button[data-action="schedule"]').click()
    expect(page.get_by_test_id("campaign-state")).to_have_attribute("data-state", "scheduled")
    page.goto(f"{live_server.url}/admin/marketing/campaign/calendar/")
    entry = page.locator(f'[data-campaign="{campaign.pk}"]')
    expect(entry).to_contain_text("Spring sale")
    expect(entry).to_have_attribute("data-state", "scheduled")
    shot(page, "5-calendar")

    # When the minute tick runs and the workers drain, it lands in the sandbox
    run_campaigns()
    send_due_messages()
    assert SandboxMessage.objects.filter(subject__startswith="News for Reader").count() == 5
    messages = OutboxMessage.objects.filter(campaign_recipient__campaign=campaign).order_by("pk")
    now = timezone.now()
    for message in messages[:3]:
        DeliveryEvent.objects.create(message=message, kind="opened", occurred_at=now)
    DeliveryEvent.objects.create(message=messages[0], kind="clicked", payload={"link": 1}, occurred_at=now)
    record_order(contact=messages[0].contact, external_id="e2e-1", amount="30.00", status="paid")
    run_campaigns()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.SENT

    # Then the report shows the numbers and draws its charts
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/report/")
    cards = page.get_by_test_id("report-card")
    expect(cards.filter(has_text="Sent")).to_contain_text("5")
    expect(cards.filter(has_text="Opens")).to_contain_text("3")
    expect(cards.filter(has_text="Clicks")).to_contain_text("1")
    expect(cards.filter(has_text="Revenue")).to_contain_text("30")
    expect(page.locator('[data-plotly-target="funnel"][data-drawn="true"]')).to_have_count(1)
    shot(page, "6-report")

    # And the recipients page lists each one with its sent message
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/overview/")
    page.get_by_test_id("recipients-link").click()
    expect(page.get_by_test_id("recipient-row")).to_have_count(5)
    expect(page.get_by_test_id("recipient-row").first).to_contain_text("Sent")
    shot(page, "6b-recipients")


def test_author_with_the_approver_role_cannot_approve_her_own_in_the_queue(page, live_server, approver, marketer, newsletter):
    people = make_people(newsletter, 2, prefix="own")
    version = make_version(approver, newsletter)
    campaign = create_campaign(
        actor=approver, name="Own work", topic=newsletter, template_version=version, segments=[make_segment("Own", people)]
    )
    submit_campaign(actor=approver, campaign=campaign)
    log_in(page, live_server, approver)
    page.goto(f"{live_server.url}/admin/marketing/campaign/approvals/")
    expect(page.get_by_test_id("own-campaign")).to_be_visible()
    expect(page.locator('button[data-action="approve"]')).to_have_count(0)
    # a crafted POST by the author, who holds the approve permission, is refused by the action
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/overview/")
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    crafted = page.request.post(
        f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/do/approve/",
        form={"csrfmiddlewaretoken": csrf},
        headers={"Referer": live_server.url + "/admin/"},
    )
    assert crafted.ok and "You cannot approve a campaign you wrote." in crafted.text()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PENDING_APPROVAL
    shot(page, "7-own-campaign")


def test_drag_a_scheduled_campaign_to_another_day_in_the_calendar(page, live_server, marketer, approver, newsletter):
    people = make_people(newsletter, 2, prefix="drag")
    version = make_version(marketer, newsletter)
    when = (timezone.now() + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    campaign = create_campaign(
        actor=marketer,
        name="Drag me",
        topic=newsletter,
        template_version=version,
        segments=[make_segment("Drag", people)],
        send_mode=Campaign.SendMode.AT,
        send_at=when,
    )
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    target = when + timedelta(days=1)
    log_in(page, live_server, marketer)
    page.goto(f"{live_server.url}/admin/marketing/campaign/calendar/?view=week&date={when.date().isoformat()}")
    if target.date().weekday() == 0:  # the next day starts a new week: use the month view
        page.goto(f"{live_server.url}/admin/marketing/campaign/calendar/?date={when.date().isoformat()}")
    source = page.locator(f'[data-campaign="{campaign.pk}"]')
    expect(source).to_have_attribute("draggable", "true")
    with page.expect_navigation():
        source.drag_to(page.locator(f'[data-day="{target.date().isoformat()}"]'))
    campaign.refresh_from_db()
    # the schedule is part of what was approved: the moved campaign needs a new approval
    assert campaign.send_at == target and campaign.state == Campaign.State.DRAFT
    expect(page.get_by_text("it is a draft again and needs a new approval")).to_be_visible()
    shot(page, "8-calendar-rescheduled")
