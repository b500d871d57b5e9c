"""A marketer creates the cart-abandoned preset in the browser, edits and activates it;
the shop sends events through the API; an hour later the run and the sandbox message are
in the console, and an order ends the run before the second reminder."""

from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone
from playwright.sync_api import Page, expect

from marketing.automations.runner import run_due_steps
from marketing.models import Automation
from messaging.api_keys import create_api_key
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.content.catalog import sync_catalog
from messaging.delivery.sending import send_due_messages
from messaging.models import Topic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-results" / "screenshots"


def settle(page: Page) -> None:
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"automation-{name}.png"), full_page=True)


@pytest.fixture
def daytime():
    """The preset keeps quiet hours (21:00 to 08:00 in the contact's zone): run the story at 09:30 UTC
    today, or the first reminder is held until morning whenever CI runs at night."""
    with time_machine.travel(timezone.now().replace(hour=9, minute=30), tick=True):
        yield


def test_cart_abandoned_preset_from_the_browser_to_the_sandbox(daytime, marketer, admin_user, console_login, live_server, settings):
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Paix, 75002 Paris"
    settings.MAILROOM_KICK_CLUSTER = False
    promotions = Topic.objects.create(key="promotions", name="Promotions", kind=Topic.Kind.MARKETING)
    Topic.objects.create(key="account", name="Account", kind=Topic.Kind.TRANSACTIONAL)
    sync_catalog()
    ada = create_contact(actor=None, email="ada@example.com", first_name="Ada", timezone="UTC")
    subscribe(actor=None, contact=ada, topic=promotions)
    token = create_api_key(actor=admin_user, name="Shop", role=Group.objects.get(name="Marketer")).token
    page = console_login(marketer)

    # given the preset gallery, the marketer creates the cart-abandoned preset in one click
    page.goto(f"{live_server.url}/admin/marketing/automation/presets/")
    expect(page.get_by_test_id("preset-cart-abandoned")).to_be_visible()
    shot(page, "presets")
    page.get_by_test_id("create-cart-abandoned").click()
    expect(page.get_by_test_id("automation-state")).to_have_text("Draft")
    expect(page.get_by_test_id("step-row")).to_have_count(4)

    # and edits it with the HTMX step editor: adds a step, moves it up, removes it
    page.get_by_test_id("step-kind").select_option("wait")
    page.get_by_test_id("step-amount").fill("3")
    page.get_by_test_id("step-add").click()
    settle(page)
    expect(page.get_by_test_id("step-row")).to_have_count(5)
    expect(page.get_by_test_id("step-summary").nth(4)).to_have_text("Wait 3 hours")
    page.get_by_test_id("step-up").nth(4).click()
    settle(page)
    expect(page.get_by_test_id("step-summary").nth(3)).to_have_text("Wait 3 hours")
    shot(page, "step-editor")
    page.get_by_test_id("step-remove").nth(3).click()
    settle(page)
    expect(page.get_by_test_id("step-row")).to_have_count(4)

    # when it is activated
    page.get_by_test_id("activate").click()
    expect(page.get_by_test_id("automation-state")).to_have_text("Active")
    automation = Automation.objects.get()
    assert automation.state == "active" and list(automation.steps.values_list("kind", flat=True)) == ["wait", "send", "wait", "send"]

    # and the shop reports an abandoned cart through the API, twice with the same key
    event = {
        "email": "ada@example.com",
        "name": "cart_abandoned",
        "idempotency_key": "cart-42",
        "properties": {"cart": {"url": "https://shop.test/cart/42"}, "item": {"name": "Blue mug", "price": "12.00"}},
    }
    headers = {"Authorization": f"Api-Key {token}"}
    assert page.request.post(f"{live_server.url}/api/v1/events/", data=event, headers=headers).status == 201
    assert page.request.post(f"{live_server.url}/api/v1/events/", data=event, headers=headers).status == 200
    run_due_steps(owner="e2e")  # what the cluster does right after the event: the 1 h wait starts

    # then an hour later (the cluster's minute pass) the first reminder is in the sandbox
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1), tick=True):
        run_due_steps(owner="e2e")
        send_due_messages(owner="e2e")
        page.goto(f"{live_server.url}/admin/marketing/automation/{automation.pk}/flow/")
        expect(page.get_by_test_id("run-row")).to_have_count(1)
        expect(page.get_by_test_id("report-messages_sent")).to_have_text("1")
        shot(page, "run")
        page.goto(f"{live_server.url}/admin/messaging/sandboxmessage/")
        expect(page.get_by_text("You left something behind, Ada")).to_be_visible()
        shot(page, "sandbox")

        # and an order through the API ends the run: no second reminder a day later
        order = {"email": "ada@example.com", "order_id": "O-42", "amount": "12.00", "status": "paid"}
        assert page.request.post(f"{live_server.url}/api/v1/orders/", data=order, headers=headers).status == 201
    with time_machine.travel(timezone.now() + timedelta(days=1, hours=2), tick=True):
        run_due_steps(owner="e2e")
        send_due_messages(owner="e2e")
        page.goto(f"{live_server.url}/admin/marketing/automationrun/?q=ada@example.com")
        expect(page.get_by_text("exit event order_paid")).to_be_visible()
        shot(page, "run-history")
    run = automation.runs.get()
    assert run.status == "exited" and run.logs.filter(outcome="sent").count() == 1
