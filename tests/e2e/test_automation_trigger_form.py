"""In the browser: a marketer changes an automation's trigger through the form with choices
(the fields follow the chosen kind, a bad input is refused on its field), and the consent
log reads as sentences. Screenshots: docs/screenshots/automation-trigger-form.png and
consent-log.png."""

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from marketing.automations.actions import create_automation_from_preset
from marketing.models import Automation
from messaging.consent import ConsentContext, subscribe, unsubscribe
from messaging.contacts import create_contact
from messaging.content.catalog import sync_catalog
from messaging.models import ConsentRecord, Topic
from messaging.preferences import pause_marketing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"


def shot(page: Page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / name), full_page=True)


def test_marketer_changes_a_trigger_through_the_form(marketer, console_login, live_server, settings):
    settings.MAILROOM_KICK_CLUSTER = False
    Topic.objects.create(key="promotions", name="Promotions", kind=Topic.Kind.MARKETING)
    sync_catalog()
    automation = create_automation_from_preset(actor=marketer, key="cart-abandoned")
    page = console_login(marketer)

    # given the flow page, the trigger reads as a sentence with a link to change it
    page.goto(f"{live_server.url}/admin/marketing/automation/{automation.pk}/flow/")
    expect(page.get_by_test_id("trigger-text")).to_have_text("When the event “cart_abandoned” happens")
    expect(page.get_by_test_id("exit-texts")).to_contain_text("When the event “order_paid” happens")
    page.get_by_test_id("edit-trigger").click()

    # the form shows the event fields only; choosing "Schedule" shows the schedule's
    form = page.get_by_test_id("trigger-form")
    expect(page.get_by_test_id("trigger-event")).to_be_visible()
    expect(page.get_by_test_id("trigger-schedule")).to_be_hidden()
    form.locator("select[name=trigger_type]").select_option("schedule")
    expect(page.get_by_test_id("trigger-schedule")).to_be_visible()
    expect(page.get_by_test_id("trigger-event")).to_be_hidden()

    # a time that is not one is refused on its field, and nothing is saved
    form.locator("select[name=weekday]").select_option("2")
    form.locator("input[name=time]").evaluate("input => { input.type = 'text'; input.value = 'noon'; }")
    page.get_by_test_id("save-trigger").click()
    expect(page.get_by_test_id("trigger-schedule")).to_contain_text("Enter a valid time.")
    automation.refresh_from_db()
    assert automation.trigger_type == "event"

    # then a real time is saved, and the flow page says it in words
    page.locator("select[name=trigger_type]").select_option("schedule")
    page.locator("input[name=time]").fill("10:30")
    exit_event = page.locator("select[name='exits-0-event']")
    expect(exit_event).to_have_value("order_pending")
    page.locator("select[name='exits-3-event']").select_option("order_fulfilled")
    shot(page, "automation-trigger-form.png")
    page.get_by_test_id("save-trigger").click()
    expect(page.get_by_test_id("trigger-text")).to_have_text("Every Wednesday at 10:30, in each contact's time zone")
    expect(page.get_by_test_id("exit-texts")).to_contain_text("When the event “order_fulfilled” happens")
    automation.refresh_from_db()
    assert (automation.trigger_type, automation.trigger) == ("schedule", {"weekday": 2, "time": "10:30"})
    assert {"event": "order_fulfilled"} in automation.exit_events
    # a schedule reaches many contacts: activating it now waits for a second person
    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("approval-waiting")).to_be_visible()
    assert Automation.objects.get(pk=automation.pk).state == Automation.State.PENDING_APPROVAL


def test_consent_log_reads_as_sentences(admin_user, console_login, live_server):
    newsletter = Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING)
    center = ConsentContext(source=ConsentRecord.Source.PREFERENCE_CENTER, ip_address="203.0.113.4")
    ada = create_contact(actor=None, email="ada@example.com", first_name="Ada")
    subscribe(actor=None, contact=ada, topic=newsletter, context=center)
    pause_marketing(actor=None, contact=ada, weeks=2, context=center)
    unsubscribe(actor=None, contact=ada, topic=newsletter, context=ConsentContext(source=ConsentRecord.Source.UNSUBSCRIBE_LINK))
    page = console_login(admin_user)
    page.goto(f"{live_server.url}/admin/messaging/consentrecord/")
    body = page.locator("#result_list")
    expect(body).to_contain_text("Subscribed to “Newsletter” by email via the preference center, IP 203.0.113.4")
    expect(body).to_contain_text("Unsubscribed from “Newsletter” by email via the unsubscribe link")
    expect(body).not_to_contain_text('{"')
    expect(body).not_to_contain_text("preference_center")
    shot(page, "consent-log.png")
