"""A visitor signs up on a form, in a real browser: on the hosted page, and through the
snippet embedded in another site (a plain http.server on another port).

The confirmation email is read as the visitor's mail server receives it (a real SMTP relay
on loopback, the bytes parsed): its link is a secret meant for her alone, so the sandbox
inbox lists the mail but hides the link from every staff role (messaging.secrets), and a
test reading it from there would prove the opposite of the rule. Then the bots and the
curious: an unconfirmed sign-up expires, the honeypot and the throttle store nothing, and
signing up an address that is already subscribed looks exactly like any other sign-up."""

import email
import email.policy
import re
import threading
from datetime import timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.utils import timezone
from playwright.sync_api import Page, expect

from messaging.consent import ConsentContext
from messaging.delivery.sending import send_due_messages
from messaging.models import (
    Channel,
    ConsentRecord,
    Contact,
    OutboxMessage,
    PendingSignup,
    Provider,
    SandboxMessage,
    SignupForm,
    Subscription,
    Topic,
)
from messaging.preferences import subscribe
from messaging.signup.actions import embed_snippet
from messaging.tasks import clean_expired_signups
from tests.support.smtp_sink import SMTPSink

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONFIRM_LINK = re.compile(r"https?://\S+/f/c/[^\s/]+/")


@pytest.fixture
def relay():
    with SMTPSink() as sink:
        Provider.objects.create(
            name="Relay", channel=Channel.EMAIL, kind=Provider.Kind.SMTP, priority=1, config={"host": "127.0.0.1", "port": sink.port}
        )
        yield sink


@pytest.fixture
def signup_form(live_server, settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = live_server.url
    news = Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING)
    form = SignupForm.objects.create(name="Our news", slug="news", ask_name=True, wording="Yes, email me the news.")
    form.topics.set([news])
    return form


def received_link(relay: SMTPSink, address: str) -> str:
    """Send what is due, then read the confirmation link from the mail as it arrived."""
    send_due_messages()
    mails = [email.message_from_bytes(raw, policy=email.policy.default) for raw in relay.handler.messages]
    mine = [mail for mail in mails if mail["To"].addresses[0].addr_spec == address]
    assert len(mine) == 1, f"{len(mine)} mails reached {address}"
    assert mine[0]["Subject"] == "Please confirm your subscription"
    return CONFIRM_LINK.search(mine[0].get_body(("plain",)).get_content()).group(0)


def confirm(page: Page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("Subscription confirmed")


def sign_up(page: Page, url: str, address: str) -> str:
    """Fill the hosted form and return the text of the page the visitor lands on."""
    page.goto(url)
    page.get_by_label("Your email address").fill(address)
    page.get_by_role("button", name="Sign up").click()
    return page.locator("main").inner_text()


def assert_subscribed(address: str, form: SignupForm) -> None:
    assert Subscription.objects.get(contact__email=address, topic__key="newsletter").status == "subscribed"
    record = ConsentRecord.objects.get(contact__email=address)
    assert record.source == "signup" and record.details["form"] == form.pk
    assert record.details["wording"] == "Yes, email me the news."


def assert_nothing_stored(address: str) -> None:
    assert not PendingSignup.objects.filter(email=address).exists()
    assert not Contact.objects.filter(email=address).exists()
    assert not OutboxMessage.objects.filter(to_address=address).exists()


def test_a_visitor_signs_up_on_the_hosted_page_and_confirms_from_the_mail_she_receives(signup_form, live_server, relay, page: Page):
    page.goto(f"{live_server.url}/f/news/")
    page.get_by_label("Your email address").fill("grace@example.com")
    page.get_by_label("Your name (optional)").fill("Grace")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_have_text("Thank you")
    assert not Subscription.objects.exists()
    link = received_link(relay, "grace@example.com")
    confirm(page, link)
    assert_subscribed("grace@example.com", signup_form)
    # the link worked once
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Confirm your subscription")
    assert ConsentRecord.objects.filter(contact__email="grace@example.com").count() == 1


def test_a_visitor_signs_up_through_the_embedded_snippet(signup_form, live_server, relay, page: Page, tmp_path):
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
    confirm(page, received_link(relay, "ada@example.com"))
    assert_subscribed("ada@example.com", signup_form)


def test_the_sandbox_lists_the_confirmation_but_never_shows_its_link(signup_form, live_server, console_login, admin_user, page: Page):
    Provider.objects.create(name="Sandbox", channel=Channel.EMAIL, kind=Provider.Kind.SANDBOX, priority=1)
    sign_up(page, f"{live_server.url}/f/news/", "lin@example.com")
    send_due_messages()
    caught = SandboxMessage.objects.get(to_address="lin@example.com")
    assert caught.is_sensitive and "/f/c/" not in caught.body_text + caught.body_html
    console_login(admin_user)
    page.goto(f"{live_server.url}/admin/messaging/sandboxmessage/{caught.pk}/change/")
    expect(page.get_by_text("hidden: contains a secret link").first).to_be_visible()
    expect(page.get_by_text("only its recipient can read it", exact=False).first).to_be_visible()
    assert "/f/c/" not in page.content()


def test_an_unconfirmed_sign_up_expires(signup_form, live_server, relay, page: Page):
    sign_up(page, f"{live_server.url}/f/news/", "late@example.com")
    link = received_link(relay, "late@example.com")
    with time_machine.travel(timezone.now() + timedelta(days=8), tick=True):
        page.goto(link)
        expect(page.get_by_role("heading", level=1)).to_have_text("This link has expired")
        assert clean_expired_signups() == 1  # the daily job
    assert not PendingSignup.objects.exists() and not Contact.objects.exists()
    assert not Subscription.objects.exists() and not ConsentRecord.objects.exists()


def test_the_honeypot_shows_a_robot_the_thank_you_page_and_stores_nothing(signup_form, live_server, page: Page):
    page.goto(f"{live_server.url}/f/news/")
    page.get_by_label("Your email address").fill("robot@example.com")
    page.locator("input[tabindex='-1']").evaluate("field => { field.value = 'http://spam.example' }")  # what a bot fills in
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_have_text("Thank you")
    assert_nothing_stored("robot@example.com")
    assert SignupForm.objects.get(pk=signup_form.pk).submissions == 0


def test_the_throttle_refuses_a_flood_from_one_address_and_stores_nothing(signup_form, live_server, page: Page, settings):
    settings.MAILROOM_RATE_LIMITS = {**settings.MAILROOM_RATE_LIMITS, "signup-ip": (2, 3600)}
    for n in (1, 2):
        assert "Thank you" in sign_up(page, f"{live_server.url}/f/news/", f"bot{n}@example.com")
    refused = sign_up(page, f"{live_server.url}/f/news/", "bot3@example.com")
    assert "Too many requests" in refused
    assert_nothing_stored("bot3@example.com")
    assert PendingSignup.objects.count() == 2


def test_signing_up_an_address_already_subscribed_looks_like_any_other_sign_up(signup_form, live_server, relay, page: Page):
    known = Contact.objects.create(email="known@example.com")
    subscribe(actor=None, contact=known, topic=Topic.objects.get(key="newsletter"), channel=Channel.EMAIL, context=ConsentContext())
    stranger = sign_up(page, f"{live_server.url}/f/news/", "new@example.com")
    member = sign_up(page, f"{live_server.url}/f/news/", "known@example.com")
    assert member == stranger and "Check your inbox" in member
    again = sign_up(page, f"{live_server.url}/f/news/", "new@example.com")  # asked twice in the window
    assert again == stranger
    send_due_messages()
    assert [email.message_from_bytes(raw)["To"] for raw in relay.handler.messages] == ["new@example.com"]
    assert ConsentRecord.objects.filter(contact=known).count() == 1
