"""A visitor signs up on a form, in a real browser: on the hosted page, and through the
snippet embedded in another site (a plain http.server on another port). The confirmation
email is read from the sandbox; opening its link subscribes her, with a consent record."""

import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from messaging.delivery.sending import send_due_messages
from messaging.models import ConsentRecord, OutboxMessage, SandboxMessage, SignupForm, Subscription, Topic
from messaging.secrets import attach_secrets, reveal
from messaging.signup.actions import embed_snippet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def signup_form(live_server, settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = live_server.url
    news = Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING)
    form = SignupForm.objects.create(name="Our news", slug="news", ask_name=True, wording="Yes, email me the news.")
    form.topics.set([news])
    return form


def confirm_from_sandbox(page: Page, address: str) -> None:
    # The sandbox hides the sealed link (messaging.secrets), and sending discards the seal:
    # read it first, as the recipient's mail client will get it.
    message = OutboxMessage.objects.get(to_address=address)
    attach_secrets(message)
    link = re.search(r"https?://\S+/f/c/[^\s/]+/", reveal(message, message.body_text)).group(0)
    send_due_messages()
    caught = SandboxMessage.objects.get(to_address=address)
    assert caught.subject == "Please confirm your subscription" and caught.is_sensitive
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("Subscription confirmed")


def assert_subscribed(address: str, form: SignupForm) -> None:
    assert Subscription.objects.get(contact__email=address, topic__key="newsletter").status == "subscribed"
    record = ConsentRecord.objects.get(contact__email=address)
    assert record.source == "signup" and record.details["form"] == form.pk


def test_a_visitor_signs_up_on_the_hosted_page_and_confirms(signup_form, live_server, page: Page):
    page.goto(f"{live_server.url}/f/news/")
    page.get_by_label("Your email address").fill("grace@example.com")
    page.get_by_label("Your name (optional)").fill("Grace")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_have_text("Thank you")
    assert not Subscription.objects.exists()
    confirm_from_sandbox(page, "grace@example.com")
    assert_subscribed("grace@example.com", signup_form)


def test_a_visitor_signs_up_through_the_embedded_snippet(signup_form, live_server, page: Page, tmp_path):
    (tmp_path / "index.html").write_text(f"<!doctype html><html><body><h1>Elsewhere</h1>{embed_snippet(form=signup_form)}</body></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_role("button", name="Sign up").click()
        expect(page.get_by_role("status")).to_have_text("Thank you")
    finally:
        server.shutdown()
    confirm_from_sandbox(page, "ada@example.com")
    assert_subscribed("ada@example.com", signup_form)
