"""Settings → Sending in a real browser, from the state `make run` leaves (migrations, demo
data, the email catalog; no MAILROOM_* variables): the Admin sets up sending and sends a
test to the sandbox, then a marketer's test send of a marketing template goes out.
Screenshots go to docs/screenshots/settings-*.png."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import Page, expect

from messaging import site
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import AuditEntry, SandboxMessage, Subscription, Template

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
POSTAL = "Acme Learning SAS\n12 quai des Chartrons\n33000 Bordeaux, France"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"settings-{name}.png"), full_page=True)


@pytest.fixture
def stock_install(settings):
    """What `make setup` does after migrate: demo data and the template catalog."""
    settings.MAILROOM_KICK_CLUSTER = False
    for name in ("MAILROOM_SENDER_ADDRESS", "MAILROOM_DEFAULT_FROM", "MAILROOM_BASE_URL", "MAILROOM_SITE_NAME", "MAILROOM_REPLY_TO"):
        setattr(settings, name, "")  # the README's `make run` sets none of them
    call_command("seed_demo", contacts=10, verbosity=0)
    call_command("sync_templates", verbosity=0)
    site.forget()


def test_admin_sets_up_sending_and_a_marketer_can_test_send_marketing_mail(
    stock_install, live_server, console_login, admin_user, marketer, browser
):
    # Given the Admin in the console of a fresh install: the demo sender already has a postal address
    assert site.current().postal_address
    page = console_login(admin_user)

    # When they open Settings from the sidebar
    page.locator("#nav-sidebar").locator("h2", has_text="Settings").click()
    page.locator("#nav-sidebar").get_by_role("link", name="Sending settings").click()
    expect(page).to_have_url(f"{live_server.url}/admin/settings/sending/")
    expect(page.get_by_test_id("delivery-now")).to_contain_text("sandbox inbox")
    expect(page.get_by_label("Postal address")).to_have_value("Mailroom Demo SAS\n1 rue de la Poste\n75001 Paris, France")
    shot(page, "page")

    # a bad address is refused on its field, and nothing is saved
    page.get_by_label("From address").fill("not an address")
    page.get_by_role("button", name="Save sending settings").click()
    expect(page.locator("#sending-form")).to_contain_text("is not a valid email address")
    shot(page, "error")
    assert site.current().from_email == "hello@demo.mailroom.test"

    # and they fill in the sender and postal address
    page.get_by_label("Sender name").fill("Acme Learning")
    page.get_by_label("From address").fill("hello@acme-learning.test")
    page.get_by_label("Reply-to address").fill("support@acme-learning.test")
    page.get_by_label("Postal address").fill(POSTAL)
    page.get_by_role("button", name="Save sending settings").click()
    expect(page.get_by_text("Sending settings saved.")).to_be_visible()
    assert site.current().default_from == "Acme Learning <hello@acme-learning.test>"

    # and send a test to the sandbox
    page.get_by_label("Send a test to").fill("qa@acme-learning.test")
    page.get_by_role("button", name="Send a test").click()

    # Then the page shows where it went and what the sandbox answered
    answer = page.get_by_test_id("test-answer")
    expect(answer).to_contain_text("To qa@acme-learning.test through “Sandbox Email”: Sent")
    expect(answer).to_contain_text("stored in the sandbox")
    shot(page, "test-answer")
    test_mail = SandboxMessage.objects.get(to_address="qa@acme-learning.test")
    assert test_mail.headers.get("Reply-To") == "support@acme-learning.test" or "support@acme-learning.test" in str(test_mail.headers)
    assert AuditEntry.objects.filter(verb="settings_changed", actor=admin_user).exists()

    # When a marketer test-sends a marketing template (newsletter topic) from the editor
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    marketer_page = context.new_page()
    try:
        marketer_page.goto(f"{live_server.url}/admin/login/")
        marketer_page.fill("input[name=username]", marketer.username)
        marketer_page.fill("input[name=password]", "pw-" + marketer.username)
        marketer_page.click("button[type=submit]")
        marketer_page.wait_for_url(f"{live_server.url}/admin/")
        expect(marketer_page.locator('#nav-sidebar a[href="/admin/settings/sending/"]')).to_have_count(0)  # Admin only
        # A test send of a marketing template goes to a colleague's address (not marketing
        # mail: no consent asked), from the new sender
        template = Template.objects.filter(topic__kind="marketing", locale="en", channel="email").first()
        address = "colleague@acme-learning.test"
        marketer_page.goto(live_server.url + reverse("admin:messaging_template_editor", args=[template.pk]))
        marketer_page.get_by_label("Test send to").fill(address)
        marketer_page.get_by_test_id("test-send").click()
        expect(marketer_page.get_by_test_id("test-send-result")).to_contain_text(f"Sent to {address}")
        marketer_page.screenshot(path=str(SHOTS / "settings-marketer-test-send.png"), full_page=True)
        assert SandboxMessage.objects.get(to_address=address).from_address.endswith("<hello@acme-learning.test>")
        # and real marketing mail to a subscribed demo contact carries the new postal address at its foot
        subscription = (
            Subscription.objects.filter(channel="email", status="subscribed", topic__kind="marketing")
            .select_related("contact", "topic")
            .first()
        )
        message = enqueue_message(
            channel="email",
            contact=subscription.contact,
            topic=subscription.topic,
            subject="Hello",
            text="Hi",
            html="<p>Hi</p>",
            context={},
        )
        assert send_due_messages() >= 1
        sent = SandboxMessage.objects.filter(to_address=message.to_address).latest("pk")
        assert "12 quai des Chartrons" in sent.body_text and sent.from_address.endswith("<hello@acme-learning.test>")
        # and the marketer cannot open the settings page
        response = marketer_page.goto(f"{live_server.url}/admin/settings/sending/")
        assert response.status == 403
    finally:
        context.close()
