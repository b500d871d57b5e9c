"""Outbound webhooks in a real browser, as a newcomer uses them: an Admin (and an Ops user, who
may manage them too: accounts.roles) adds an endpoint from Settings → Webhooks pointing at a
real HTTP server on loopback, copies the signing secret from the one page that shows it, and
never sees it again. A contact subscribes, the cluster's task sends the event, the receiver
checks its signature with the Standard Webhooks reference package, the delivery log shows the
answer; a 500 is replayed from the console and the log keeps both attempts. Without the
loopback setting the form refuses the address; marketers and support never reach the pages."""

import re

import pytest
from django_q.tasks import async_task
from playwright.sync_api import Page, expect
from standardwebhooks import Webhook

from messaging.consent import ConsentContext, subscribe, unsubscribe
from messaging.models import ConsentRecord, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging.schedules import may_run
from messaging.webhooks.emit import SEND_TASK
from tests.support.local_http import LocalServer, Request

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ENDPOINTS = "/admin/messaging/webhookendpoint/"
DELIVERIES = "/admin/messaging/webhookdelivery/"


@pytest.fixture
def loopback(settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.MAILROOM_WEBHOOK_TIMEOUT_SECONDS = 3
    settings.MAILROOM_KICK_CLUSTER = False  # the test runs the cluster's task itself


class Answers:
    """The receiver's answers, one per request (the last one repeats)."""

    def __init__(self, *statuses: int):
        self.statuses = list(statuses)

    def __call__(self, request: Request) -> tuple[int, str]:
        return (self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]), ""


def run_the_cluster_task() -> None:
    """What a cluster worker does when the send task is due: the registered function, by name."""
    assert may_run(SEND_TASK)
    async_task(SEND_TASK, sync=True)


def open_from_sidebar(page: Page, live_server, path: str) -> None:
    """Settings is collapsed until clicked; then the item's link."""
    page.goto(f"{live_server.url}/admin/")
    sidebar = page.locator("#nav-sidebar")
    sidebar.locator("h2", has_text="Settings").click()
    sidebar.locator(f'a[href="{path}"]').click()
    page.wait_for_url(f"{live_server.url}{path}")


def add_endpoint(page: Page, live_server, *, name: str, url: str, events: list[str]) -> None:
    open_from_sidebar(page, live_server, ENDPOINTS)
    page.get_by_role("link", name="Add webhook endpoint").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("URL").fill(url)
    for label in events:
        page.get_by_label(label, exact=True).check()
    page.get_by_role("button", name="Save", exact=True).click()


@pytest.mark.parametrize("role", ["admin_user", "ops"])
def test_staff_add_an_endpoint_see_its_secret_once_and_replay_a_failed_delivery(
    request, role, loopback, live_server, console_login, page: Page, contact, newsletter
):
    user = request.getfixturevalue(role)
    answers = Answers(200)
    with LocalServer(answers) as receiver:
        # given an Admin or Ops user adding an endpoint from the sidebar
        console_login(user)
        add_endpoint(page, live_server, name="CRM", url=f"{receiver.url}/hook", events=["Contact subscribed", "Contact unsubscribed"])
        # then the next page shows the secret, once, with a warning
        expect(page.get_by_role("heading", name="Webhook endpoint created")).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("shown only once")
        secret = page.get_by_test_id("webhook-secret").inner_text().strip()
        assert secret.startswith("whsec_")
        endpoint = WebhookEndpoint.objects.get()
        assert endpoint.event_types == ["contact.subscribed", "contact.unsubscribed"] and endpoint.created_by == user
        # and never again: a reload (the browser posts the form again) makes no second endpoint
        page.reload()
        expect(page.get_by_test_id("secret-already-shown")).to_contain_text("no second endpoint was created")
        assert secret not in page.content() and WebhookEndpoint.objects.count() == 1
        # nor the list, nor the endpoint's page
        page.get_by_role("link", name="Done").click()
        page.wait_for_url(f"{live_server.url}{ENDPOINTS}")
        expect(page.locator("#result_list")).to_contain_text("CRM")
        assert secret not in page.content() and secret[6:] not in page.content()
        page.get_by_role("link", name="CRM").click()
        expect(page.get_by_label("URL")).to_have_value(f"{receiver.url}/hook")
        assert secret not in page.content() and secret[6:] not in page.content()

        # when a contact subscribes (the product action) and the cluster sends what is due
        subscribe(actor=None, contact=contact, topic=newsletter, context=ConsentContext(source=ConsentRecord.Source.CONSOLE))
        run_the_cluster_task()
        # then the receiver got it, signed with the secret the page showed
        (received,) = receiver.requests
        headers = {name.lower(): value for name, value in received.headers.items()}
        payload = Webhook(secret).verify(received.body, headers)
        assert payload["type"] == "contact.subscribed" and payload["data"]["contact_id"] == contact.pk
        # and the delivery log lists it with the receiver's answer
        open_from_sidebar(page, live_server, DELIVERIES)
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(headers["webhook-id"])
        expect(rows.first).to_contain_text("contact.subscribed")
        expect(rows.first).to_contain_text("200")

        # when the next event gets a 500, then the user replays it and the receiver answers 200
        answers.statuses = [500, 200]
        unsubscribe(actor=None, contact=contact, topic=newsletter, context=ConsentContext(source=ConsentRecord.Source.CONSOLE))
        run_the_cluster_task()
        failed = WebhookDelivery.objects.get(event_type="contact.unsubscribed")
        assert (failed.status, failed.last_status_code) == (WebhookDelivery.Status.PENDING, 500)
        page.reload()
        row = page.locator("#result_list tbody tr", has_text=failed.webhook_id)
        expect(row).to_contain_text("500")
        row.locator("input[type=checkbox]").check()
        page.locator("select[name=action]").select_option(label="Replay (send again with the same webhook-id)")
        page.get_by_role("button", name="Run").click()
        expect(page.get_by_text("Replay these webhook deliveries?")).to_be_visible()
        expect(page.get_by_role("listitem").filter(has_text=failed.webhook_id)).to_have_text(
            f"contact.unsubscribed → CRM ({failed.webhook_id})"
        )
        page.get_by_role("button", name="Yes, I am sure").click()
        expect(page.get_by_text("1 delivery will be sent again.")).to_be_visible()
        run_the_cluster_task()

    # then the log shows both attempts, and the receiver got the same webhook-id twice
    assert [r.headers.get("webhook-id") for r in receiver.requests[1:]] == [failed.webhook_id] * 2
    assert list(WebhookAttempt.objects.filter(delivery=failed).order_by("id").values_list("status_code", flat=True)) == [500, 200]
    page.goto(f"{live_server.url}{DELIVERIES}{failed.pk}/change/")
    expect(page.locator("div.readonly").filter(has_text=re.compile(r"^Delivered$"))).to_be_visible()
    expect(page.locator("td.field-status_code")).to_have_text(["200", "500"])  # newest first
    expect(page.locator("td.field-error")).to_have_text(["-", "HTTP 500"])


def test_a_loopback_url_is_refused_on_the_form_without_the_setting(live_server, console_login, admin_user, page: Page, settings):
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    console_login(admin_user)
    add_endpoint(page, live_server, name="Local", url="http://127.0.0.1:8765/hook", events=["Contact subscribed"])
    expect(page.get_by_text("private, loopback or reserved address")).to_be_visible()
    expect(page.get_by_label("URL")).to_have_value("http://127.0.0.1:8765/hook")  # kept to correct
    assert "whsec_" not in page.content()
    assert not WebhookEndpoint.objects.exists()
    # on a closed network where the setting is on, the same form saves, once
    settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_test_id("webhook-secret")).to_contain_text("whsec_")
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:8765/hook"


@pytest.mark.parametrize("role", ["marketer", "support"])
def test_marketers_and_support_cannot_open_the_webhook_pages(request, role, live_server, console_login, page: Page):
    console_login(request.getfixturevalue(role))
    sidebar = page.locator("#nav-sidebar")
    expect(sidebar.locator('a[href="/admin/messaging/apikey/"], a[href="/admin/messaging/contact/"]').first).to_be_attached()
    expect(sidebar.locator(f'a[href="{ENDPOINTS}"], a[href="{DELIVERIES}"]')).to_have_count(0)
    for path in (ENDPOINTS, f"{ENDPOINTS}add/", DELIVERIES):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path
