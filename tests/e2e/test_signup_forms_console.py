"""Sign-up forms in the console, in a real browser, as a marketer makes one: from the sidebar,
with topics, fields and double opt-in; the form's page gives the hosted page's link and the
snippet to embed; a real visit, sign-up and confirmation move the counts on the list. Bad
input (an address already used, no topic) gets a clear error and stores nothing.

The confirmation link is a secret meant for the visitor alone (messaging.secrets): the test
reads it from the outbox row the way tests/messaging/test_signup_forms.py does."""

import re

import pytest
from playwright.sync_api import Page, expect

from messaging.models import AuditEntry, ConsentRecord, OutboxMessage, SignupForm, Subscription, Topic
from messaging.secrets import attach_secrets, reveal

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIST = "/admin/messaging/signupform/"


@pytest.fixture(autouse=True)
def _site(live_server, settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = live_server.url


@pytest.fixture
def topics(db) -> list[Topic]:
    return [
        Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING),
        Topic.objects.create(key="offers", name="Offers", kind=Topic.Kind.MARKETING),
    ]


def open_add_form(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/")
    sidebar = page.locator("#nav-sidebar")
    sidebar.locator("h2", has_text="Audience").click()
    sidebar.locator(f'a[href="{LIST}"]').click()
    page.wait_for_url(f"{live_server.url}{LIST}")
    page.locator("a.addlink").click()  # the "+" at the top of the list
    page.wait_for_url(f"{live_server.url}{LIST}add/")


def pick_topics(page: Page, *names: str) -> None:
    for name in names:
        page.locator("select#id_topics_from option", has_text=name).click()
        page.locator("#id_topics_add").click()


def confirmation_link(address: str) -> str:
    message = OutboxMessage.objects.get(to_address=address)
    attach_secrets(message)
    return re.search(r"https?://\S+/f/c/[^\s/]+/", reveal(message, message.body_text)).group(0)


def counts_on_the_list(page: Page, live_server, name: str) -> list[str]:
    page.goto(f"{live_server.url}{LIST}")
    row = page.locator("#result_list tbody tr", has_text=name)
    return [row.locator(f"td.field-{field}").inner_text().strip() for field in ("views", "submissions", "confirmations")]


def test_a_marketer_makes_a_form_publishes_it_and_sees_the_counts_go_up(live_server, console_login, marketer, topics, page: Page):
    console_login(marketer)
    open_add_form(page, live_server)
    page.locator("#id_name").press_sequentially("Spring news")
    expect(page.locator("#id_slug")).to_have_value("spring-news")  # filled in from the name
    pick_topics(page, "Newsletter", "Offers")
    page.locator("#id_ask_name").check()
    expect(page.locator("#id_double_opt_in")).to_be_checked()
    page.get_by_role("button", name="Save and continue editing").click()

    form = SignupForm.objects.get(slug="spring-news")
    assert sorted(form.topics.values_list("key", flat=True)) == ["newsletter", "offers"]
    assert form.ask_name and form.double_opt_in
    assert AuditEntry.objects.filter(verb="created", actor=marketer, target_type="messaging.signupform").exists()
    # the form's page gives the hosted page's link and the snippet to embed
    hosted = f"{live_server.url}/f/spring-news/"
    link = page.get_by_role("link", name=hosted)
    expect(link).to_be_visible()
    snippet = page.locator("textarea[readonly]")
    expect(snippet).to_contain_text(f'action="{hosted}"')

    # when a visitor opens the hosted page from there, signs up and confirms
    with page.context.expect_page() as opened:
        link.click()
    visitor = opened.value
    visitor.get_by_label("Your email address").fill("grace@example.com")
    visitor.get_by_label("Your name (optional)").fill("Grace")
    visitor.get_by_label("Newsletter").check()
    visitor.get_by_label("Offers").uncheck()  # she wants the newsletter only
    visitor.get_by_role("button", name="Sign up").click()
    expect(visitor.get_by_role("status")).to_have_text("Thank you")
    assert counts_on_the_list(page, live_server, "Spring news") == ["1", "1", "0"]
    visitor.goto(confirmation_link("grace@example.com"))
    visitor.get_by_role("button", name="Confirm").click()
    expect(visitor.get_by_role("status")).to_have_text("Subscription confirmed")

    # then the list counts the view, the sign-up and the confirmation (the confirmation page is no view of the form)
    assert counts_on_the_list(page, live_server, "Spring news") == ["1", "1", "1"]
    assert Subscription.objects.get(contact__email="grace@example.com").topic.key == "newsletter"
    assert ConsentRecord.objects.get(contact__email="grace@example.com").details["form"] == form.pk


def test_bad_input_on_the_console_form_shows_a_clear_error_and_stores_nothing(live_server, console_login, marketer, topics, page: Page):
    taken = SignupForm.objects.create(name="News", slug="news")
    taken.topics.set(topics[:1])
    audited = AuditEntry.objects.count()
    console_login(marketer)
    open_add_form(page, live_server)
    # an address another form uses, and no topic picked
    page.locator("#id_name").press_sequentially("News")
    expect(page.locator("#id_slug")).to_have_value("news")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Please correct the errors below.")).to_be_visible()
    expect(page.get_by_text("Another sign-up form already uses this address: pick a different one.")).to_be_visible()
    expect(page.get_by_text("Pick at least one topic: a sign-up form subscribes visitors to the topics it offers.")).to_be_visible()
    assert list(SignupForm.objects.values_list("slug", flat=True)) == ["news"]
    assert AuditEntry.objects.count() == audited
    # corrected, it saves
    page.locator("#id_slug").fill("news-2")
    pick_topics(page, "Offers")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(f"{live_server.url}{LIST}")
    assert list(SignupForm.objects.get(slug="news-2").topics.values_list("key", flat=True)) == ["offers"]
