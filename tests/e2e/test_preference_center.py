"""A contact manages their subscriptions from an email, in a real browser.

The email is read where a new Mailroom user reads every email: the console's sandbox
inbox. The contact then opens its preference link in their own browser (no console
session, no login), changes topics with the keyboard, and unsubscribes in one click.
Screenshots: test-results/screenshots/prefs-*.png.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import ConsentRecord, OutboxMessage, SandboxMessage, Subscription, Topic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "test-results" / "screenshots"
HTML = """<html><body style="font-family:sans-serif">
<h1>Spring news</h1><p>Hello {{ contact.first_name }}, our spring picks are here.</p>
<p><a href="https://shop.example.com/spring">See the picks</a></p>
<p><a href="__MAILROOM_PREFERENCES__">Manage your preferences</a> · <a href="__MAILROOM_VIEW__">View in your browser</a></p>
</body></html>"""


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


@pytest.fixture
def mailbox(live_server, settings):
    """Grace, subscribed to two topics by email, and the newsletter she received."""
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
    settings.MAILROOM_BASE_URL = live_server.url  # the links in the email lead to this server
    grace = create_contact(actor=None, email="grace@example.com", first_name="Grace", locale="en")
    news = Topic.objects.create(key="newsletter", name="Newsletter", description="Our monthly news", kind=Topic.Kind.MARKETING)
    promos = Topic.objects.create(key="promotions", name="Promotions", description="Sales and offers", kind=Topic.Kind.MARKETING)
    for topic in (news, promos):
        subscribe(actor=None, contact=grace, topic=topic)
    message = enqueue_message(channel="email", contact=grace, topic=news, subject="Spring news", html=HTML)
    send_due_messages()
    return grace, news, promos, SandboxMessage.objects.get(message=message)


def test_a_contact_changes_topics_and_unsubscribes_in_one_click_from_the_sandbox_email(
    mailbox, admin_user, console_login, live_server, page: Page
):
    grace, news, promos, caught = mailbox
    # Given the email in the console's sandbox inbox
    console = console_login(admin_user)
    console.goto(f"{live_server.url}/admin/messaging/sandboxmessage/")
    shoot(console, "prefs-0-sandbox-inbox.png")
    console.locator("#result_list tbody tr", has_text="grace@example.com").get_by_role("link").first.click()
    expect(console.get_by_text("Spring news").first).to_be_visible()
    preview = console.frame_locator("iframe[title=preview]")
    expect(preview.get_by_role("heading", name="Spring news")).to_be_visible()
    shoot(console, "prefs-1-sandbox-email.png")
    preferences_url = preview.get_by_role("link", name="Manage your preferences").get_attribute("href")
    assert re.fullmatch(re.escape(live_server.url) + r"/p/[^/]+/", preferences_url)
    assert "grace" not in preferences_url and f"/{caught.message_id}/" not in preferences_url

    # When Grace opens the link in her own browser: no console session, no login
    contact_context = page.context.browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-US")
    grace_page = contact_context.new_page()
    violations = []
    grace_page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    grace_page.goto(preferences_url)
    expect(grace_page.get_by_role("heading", name="Your preferences")).to_be_visible()
    newsletter_box = grace_page.get_by_label("Newsletter: Email")
    promotions_box = grace_page.get_by_label("Promotions: Email")
    expect(newsletter_box).to_be_checked()
    expect(promotions_box).to_be_checked()
    shoot(grace_page, "prefs-2-preference-center.png")

    # she unticks Promotions and picks the weekly digest with the keyboard alone
    promotions_box.focus()
    grace_page.keyboard.press("Space")
    grace_page.get_by_label("Weekly digest only: at most one message a week").focus()
    grace_page.keyboard.press("Space")
    grace_page.get_by_role("button", name="Save my preferences").focus()
    grace_page.keyboard.press("Enter")

    # Then the page confirms, and the choices are stored with a consent trail
    expect(grace_page.get_by_role("status")).to_have_text("Your preferences are saved.")
    expect(grace_page.get_by_label("Promotions: Email")).not_to_be_checked()
    expect(grace_page.get_by_label("Newsletter: Email")).to_be_checked()
    shoot(grace_page, "prefs-3-saved.png")
    assert Subscription.objects.get(contact=grace, topic=promos).status == "unsubscribed"
    assert Subscription.objects.get(contact=grace, topic=news).status == "subscribed"
    grace.refresh_from_db()
    assert grace.marketing_frequency == "weekly"
    assert set(ConsentRecord.objects.filter(source="preference_center").values_list("action", flat=True)) == {"withdrawn", "frequency"}

    # When she unsubscribes from everything: one click
    queued = enqueue_message(channel="email", contact=grace, topic=news, subject="Later", text="x", scheduled_at=None)
    grace_page.get_by_role("button", name="Unsubscribe from everything").click()

    # Then nothing marketing is left, including what was already queued
    expect(grace_page.get_by_role("status")).to_have_text("You are unsubscribed from all our marketing messages.")
    expect(grace_page.get_by_label("Newsletter: Email")).not_to_be_checked()
    shoot(grace_page, "prefs-4-unsubscribed.png")
    assert not Subscription.objects.filter(contact=grace, status="subscribed").exists()
    queued.refresh_from_db()
    assert queued.status == OutboxMessage.Status.CANCELLED
    assert violations == []
    contact_context.close()


def test_the_preference_center_fits_a_phone_and_speaks_french(mailbox, page: Page):
    grace, *_rest, caught = mailbox
    url = re.search(r'href="([^"]+/p/[^"]+/)"', caught.body_html).group(1)
    grace.locale = "fr"
    grace.save(update_fields=["locale"])
    phone = page.context.browser.new_context(viewport={"width": 375, "height": 740}, locale="fr-FR", is_mobile=True, has_touch=True)
    mobile = phone.new_page()
    mobile.goto(url)
    expect(mobile.get_by_role("heading", name="Vos préférences")).to_be_visible()
    expect(mobile.get_by_role("button", name="Se désabonner de tout")).to_be_visible()
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    shoot(mobile, "prefs-5-mobile-fr.png")
    phone.close()
