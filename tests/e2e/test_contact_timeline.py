"""A contact's page after a campaign, an order and an unsubscribe, in a real browser.

The campaign goes out through the actions (create, submit, approve, schedule, the cluster's
minute tick, the workers), the contact opens and clicks it with her own browser, the shop
records her order, and she unsubscribes from the email's own link. The marketer then opens
her contact page: one timeline, newest first. Screenshot: docs/screenshots/contact-timeline.png.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from marketing.campaigns.actions import approve_campaign, create_campaign, schedule_campaign, submit_campaign
from marketing.campaigns.tasks import run_campaigns
from marketing.events import record_order
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery.sending import send_due_messages
from messaging.models import ConsentRecord, DeliveryEvent, OutboxMessage, SandboxMessage, Subscription
from tests.marketing.conftest import SENDER, make_segment, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "contact-timeline.png"
# A person's desktop browser (headless Chromium's own user agent reads as a scanner).
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


@pytest.fixture(autouse=True)
def _sending(settings, live_server):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER
    settings.MAILROOM_BASE_URL = live_server.url  # the email's links lead to this server
    settings.MAILROOM_PREFETCH_SECONDS = 0  # she opens it at once: not a prefetch


def link(html: str, pattern: str) -> str:
    match = re.search(rf'(?:href|src)="([^"]*{pattern}[^"]*)"', html)
    assert match, pattern
    return match.group(1).replace("&amp;", "&")


def test_the_contact_page_shows_a_campaign_an_order_and_an_unsubscribe_newest_first(
    page: Page, live_server, console_login, marketer, approver, newsletter
):
    # Given Ada, subscribed to the newsletter, with a few attributes
    ada = create_contact(
        actor=marketer,
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        attributes={"plan": "gold", "address": {"city": "London", "zip": "NW1"}},
    )
    subscribe(actor=None, contact=ada, topic=newsletter)

    # When a campaign is sent to her (through the actions, four eyes included)
    version = make_version(marketer, newsletter)
    campaign = create_campaign(
        actor=marketer, name="Spring sale", topic=newsletter, template_version=version, segments=[make_segment("Ada", [ada])]
    )
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    run_campaigns()
    send_due_messages()
    email = SandboxMessage.objects.get(to_address="ada@example.com")
    assert email.subject == "News for Ada"

    # and she opens it and clicks its link in her own browser
    reader = page.context.browser.new_context(user_agent=DESKTOP, locale="en-US")
    assert reader.request.get(link(email.body_html, "/o/"), max_redirects=0).status == 200
    assert reader.request.get(link(email.body_html, "/t/"), max_redirects=0).status == 302

    # and the shop records her order
    record_order(contact=ada, external_id="SHOP-1001", amount="42.50", status="paid")

    # and she unsubscribes from the email's own link
    ada_page = reader.new_page()
    ada_page.goto(link(email.body_html, "/u/"))
    ada_page.get_by_role("button", name="Unsubscribe").click()
    expect(ada_page.get_by_role("status")).to_have_text("You are unsubscribed")
    reader.close()
    message = OutboxMessage.objects.get(contact=ada)
    assert set(DeliveryEvent.objects.filter(message=message, is_automated=False).values_list("kind", flat=True)) >= {
        "opened",
        "clicked",
        "unsubscribed",
    }
    assert Subscription.objects.get(contact=ada, topic=newsletter).status == "unsubscribed"
    assert ConsentRecord.objects.filter(contact=ada, action="withdrawn", source="unsubscribe_link").count() == 1

    # Then the marketer sees it all on her contact page, newest first
    console = console_login(marketer)
    violations = []
    console.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    console.goto(f"{live_server.url}/admin/messaging/contact/{ada.pk}/change/")
    timeline = console.get_by_test_id("timeline")
    rows = timeline.get_by_test_id("timeline-entry")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_have_attribute("data-kind", "consent")
    expect(rows.nth(0)).to_contain_text("Unsubscribed from “Newsletter” by email")
    expect(rows.nth(0)).to_contain_text("via the unsubscribe link")
    expect(rows.nth(1)).to_have_attribute("data-kind", "order")
    expect(rows.nth(1)).to_contain_text("Order SHOP-1001 · 42.50 EUR")
    expect(rows.nth(1).get_by_test_id("entry-status")).to_contain_text("Paid")
    expect(rows.nth(2)).to_have_attribute("data-kind", "message")
    expect(rows.nth(2)).to_contain_text("News for Ada")
    status = rows.nth(2).get_by_test_id("entry-status")
    for word in ("Sent", "Opened", "Clicked", "Unsubscribed"):
        expect(status).to_contain_text(word)
    expect(rows.nth(3)).to_contain_text("Subscribed to “Newsletter” by email")
    times = [rows.nth(i).locator("time").get_attribute("datetime") for i in range(4)]
    assert times == sorted(times, reverse=True)

    # and her attributes as a table, the nested one as JSON text
    attributes = console.get_by_test_id("attribute-row")
    expect(attributes).to_have_count(2)
    expect(attributes.nth(0)).to_contain_text('{"city":"London","zip":"NW1"}')
    expect(attributes.nth(1)).to_contain_text("gold")

    # and the kind filter keeps the orders alone
    timeline.get_by_test_id("timeline-filters").get_by_role("link", name="Orders").click()
    expect(console.get_by_test_id("timeline")).to_have_attribute("data-kind", "order")
    expect(console.get_by_test_id("timeline-entry")).to_have_count(1)
    console.get_by_test_id("timeline-filters").get_by_role("link", name="Everything").click()
    expect(console.get_by_test_id("timeline-entry")).to_have_count(4)

    assert violations == []  # the searchable time zone list included
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    console.get_by_test_id("timeline").scroll_into_view_if_needed()
    console.screenshot(path=str(SCREENSHOT), full_page=True)
