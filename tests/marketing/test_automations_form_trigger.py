"""A welcome flow that starts from a sign-up form (issue 20, item 2): the "form confirmed"
trigger driven through the real hosted form and confirmation link, then the runner as the
cluster runs it; one run per confirmation; other forms start nothing; bad input refused."""

import re
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from marketing.automations.actions import activate_automation, create_automation, create_automation_from_preset
from marketing.automations.describe import describe_trigger
from marketing.automations.status import fans_out
from marketing.models import Automation, AutomationRun
from marketing.segments.actions import add_static_members, create_segment
from messaging.contacts import create_contact
from messaging.errors import InvalidInput
from messaging.models import ConsentRecord, Contact, OutboxMessage, SignupForm, Subscription, Topic
from messaging.secrets import attach_secrets, reveal

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"
WELCOME_STEPS = [
    {"kind": "subscribe", "config": {"topic": "tips"}},
    {"kind": "update", "config": {"set": {"welcomed": True}}},
    {"kind": "send", "config": {"template": "welcome", "channel": "email", "topic": "tips"}},
]


@pytest.fixture(autouse=True)
def _site(settings):
    settings.MAILROOM_BASE_URL = BASE


@pytest.fixture
def tips(catalog) -> Topic:
    return Topic.objects.create(key="tips", name="Tips", kind=Topic.Kind.MARKETING)


def make_form(slug: str, name: str, topic: Topic, *, double_opt_in: bool = True) -> SignupForm:
    form = SignupForm.objects.create(name=name, slug=slug, wording="Yes, email me the news.", double_opt_in=double_opt_in)
    form.topics.set([topic])
    return form


@pytest.fixture
def news(catalog) -> SignupForm:
    return make_form("news", "News", catalog["newsletter"])


@pytest.fixture
def other_form(catalog) -> SignupForm:
    return make_form("other", "Other", catalog["newsletter"])


def welcome_flow(form_slug: str = "news", *, name: str = "Welcome", **fields) -> Automation:
    trigger = {"form": form_slug} if form_slug else {}
    automation = create_automation(actor=None, name=name, trigger_type="form_confirmed", trigger=trigger, steps=WELCOME_STEPS, **fields)
    automation = activate_automation(actor=None, automation=automation)
    assert automation.state == Automation.State.ACTIVE  # one contact per trigger: no approval needed
    return automation


def sign_up(slug: str, email: str = "grace@example.com"):
    return Client().post(f"/f/{slug}/", {"email": email, "topics": ["newsletter"]}, REMOTE_ADDR="203.0.113.7")


def confirm_link(to: str = "grace@example.com") -> str:
    message = OutboxMessage.objects.filter(to_address=to, metadata__purpose="signup_confirmation").latest("id")
    attach_secrets(message)
    return re.search(re.escape(BASE) + r"(/f/c/[^\s/]+/)", reveal(message, message.body_text)).group(1)


# --- the seam, end to end -------------------------------------------------------------------
def test_confirming_a_sign_up_runs_the_welcome_flow_once(news, other_form, tips, clock, tick, committed):
    welcome = welcome_flow("news")
    elsewhere = welcome_flow("other", name="Other welcome")
    # when Grace signs up on the hosted page and opens her confirmation link
    with committed():
        assert sign_up("news").status_code == 200
    link = confirm_link()
    with committed():
        assert Client().post(link, REMOTE_ADDR="198.51.100.9").status_code == 200
    tick()
    # then the welcome flow ran for her: subscribed to tips with a consent record, welcomed, sent
    grace = Contact.objects.get(email="grace@example.com")
    run = welcome.runs.get()
    assert run.contact == grace and run.status == AutomationRun.Status.COMPLETED
    assert run.trigger_key == f"form:{news.pk}:contact:{grace.pk}"
    tips_subscription = Subscription.objects.get(contact=grace, topic=tips, channel="email")
    assert tips_subscription.status == Subscription.Status.SUBSCRIBED
    record = ConsentRecord.objects.get(contact=grace, topic=tips)
    assert record.action == ConsentRecord.Action.GRANTED and record.details["automation"] == welcome.pk and record.details["step"] == 1
    assert grace.attributes == {"welcomed": True}
    message = OutboxMessage.objects.get(contact=grace, metadata__automation=welcome.pk)
    assert message.topic == tips and message.subject.startswith("Welcome to")
    assert list(run.logs.filter(message=message).values_list("detail", flat=True)) == ["welcome"]  # the send step's template
    assert message.status == OutboxMessage.Status.SENT
    # the form's own consent (newsletter) came from the sign-up, as before
    assert ConsentRecord.objects.get(contact=grace, topic__key="newsletter").source == ConsentRecord.Source.SIGNUP
    # and the flow for another form did not start
    assert not elsewhere.runs.exists()
    # when the same link is opened again, nothing new starts
    with committed():
        assert Client().post(link).status_code == 410
    tick()
    assert AutomationRun.objects.count() == 1
    assert OutboxMessage.objects.filter(metadata__automation=welcome.pk).count() == 1


def test_a_single_opt_in_form_posted_twice_starts_one_run(catalog, tips, clock, tick, committed):
    make_form("quick", "Quick", catalog["newsletter"], double_opt_in=False)
    welcome = welcome_flow("")  # any form
    with committed():
        sign_up("quick")
    with committed():
        sign_up("quick")  # the form confirms (and announces) again: the trigger key is the same
    tick()
    assert welcome.runs.count() == 1
    assert OutboxMessage.objects.filter(metadata__automation=welcome.pk).count() == 1


def test_the_audience_limits_who_enters(news, tips, clock, tick, committed):
    known = create_contact(actor=None, email="known@example.com")
    vip = create_segment(actor=None, name="VIP", kind="static")
    add_static_members(segment=vip, identifiers=[known.email], actor=None)
    welcome = welcome_flow("news", audience=vip)
    for email in ("grace@example.com", "known@example.com"):
        with committed():
            sign_up("news", email)
        with committed():
            Client().post(confirm_link(email))
    tick()
    assert list(welcome.runs.values_list("contact__email", flat=True)) == ["known@example.com"]


def test_a_failing_automation_never_breaks_the_confirmation(news, tips, clock, caplog, committed):
    welcome_flow("news")
    with committed():
        sign_up("news")
    with mock.patch("marketing.automations.triggers.start_runs_for_form", side_effect=RuntimeError("boom")), committed():
        response = Client().post(confirm_link())
    assert response.status_code == 200
    assert Subscription.objects.filter(contact__email="grace@example.com", topic__key="newsletter", status="subscribed").exists()
    assert "automations could not handle the confirmed sign-up" in caplog.text


# --- the trigger's rules ------------------------------------------------------------------------
def test_a_trigger_naming_a_missing_form_is_refused_and_nothing_saved(catalog):
    with pytest.raises(InvalidInput) as error:
        create_automation(actor=None, name="Bad", trigger_type="form_confirmed", trigger={"form": "gone"}, steps=WELCOME_STEPS[1:])
    assert str(error.value) == "A form-confirmed trigger names an existing sign-up form; there is none at the address “gone”."
    assert not Automation.objects.exists()


def test_a_form_deleted_after_the_automation_was_made_blocks_activation(news, tips):
    automation = create_automation(actor=None, name="W", trigger_type="form_confirmed", trigger={"form": "news"}, steps=WELCOME_STEPS)
    news.delete()
    with pytest.raises(InvalidInput, match="there is none at the address “news”"):
        activate_automation(actor=None, automation=automation)
    automation.refresh_from_db()
    assert automation.state == Automation.State.DRAFT


def test_the_trigger_reads_as_a_sentence_and_does_not_fan_out(news):
    assert describe_trigger("form_confirmed", {"form": "news"}) == "When someone confirms a sign-up on the form “News”"
    assert describe_trigger("form_confirmed", {}) == "When someone confirms a sign-up on any form"
    assert not fans_out(Automation(trigger_type="form_confirmed", trigger={"form": "news"}))


def test_the_welcome_after_a_form_preset(catalog):
    automation = create_automation_from_preset(actor=None, key="welcome-form")
    assert (automation.trigger_type, automation.trigger, automation.reentry) == ("form_confirmed", {}, "once")
    assert list(automation.steps.values_list("kind", flat=True)) == ["update", "send"]


# --- the console and the API ------------------------------------------------------------------------
def trigger_post(**fields) -> dict:
    return {
        "trigger_type": "form_confirmed",
        "filters-TOTAL_FORMS": 1,
        "filters-INITIAL_FORMS": 0,
        "filters-0-op": "eq",
        "exits-TOTAL_FORMS": 0,
        "exits-INITIAL_FORMS": 0,
        **fields,
    }


def test_console_picks_the_form_of_a_form_confirmed_trigger(news, tips, client, marketer):
    automation = create_automation(actor=marketer, name="W", trigger_type="event", trigger={"events": ["x"]}, steps=WELCOME_STEPS)
    client.force_login(marketer)
    url = reverse("admin:marketing_automation_trigger", args=[automation.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="trigger-form_confirmed"' in page.content.decode()
    assert '<option value="news">News</option>' in page.content.decode()
    saved = client.post(url, trigger_post(signup_form="news"))
    assert saved.status_code == 302
    automation.refresh_from_db()
    assert (automation.trigger_type, automation.trigger) == ("form_confirmed", {"form": "news"})
    shown = client.get(url).content.decode()
    assert '<option value="news" selected>News</option>' in shown
    # a form that does not exist (deleted meanwhile, or a forged post) is refused, nothing saved
    refused = client.post(url, trigger_post(signup_form="gone"))
    assert refused.status_code == 400
    assert "That sign-up form does not exist (any more): choose one from the list." in refused.content.decode()
    automation.refresh_from_db()
    assert automation.trigger == {"form": "news"}
    # any form
    client.post(url, trigger_post(signup_form=""))
    automation.refresh_from_db()
    assert automation.trigger == {}


def test_console_adds_subscribe_and_unsubscribe_steps_with_a_topic(news, tips, client, marketer):
    automation = create_automation(actor=marketer, name="W", trigger_type="form_confirmed", trigger={}, steps=[])
    client.force_login(marketer)
    url = reverse("admin:marketing_automation_steps", args=[automation.pk])
    flow = client.get(reverse("admin:marketing_automation_flow", args=[automation.pk])).content.decode()
    assert '<option value="subscribe">Subscribe to a topic</option>' in flow and '<option value="tips">Tips</option>' in flow
    added = client.post(url, {"op": "add", "kind": "subscribe", "topic": "tips", "channel": "email"}, headers={"HX-Request": "true"})
    assert "Subscribe the contact to “Tips” by email" in added.content.decode()
    client.post(url, {"op": "add", "kind": "unsubscribe", "topic": "newsletter", "channel": "email"})
    assert list(automation.steps.order_by("position").values_list("kind", "config")) == [
        ("subscribe", {"topic": "tips", "channel": "email"}),
        ("unsubscribe", {"topic": "newsletter", "channel": "email"}),
    ]
    bad = client.post(url, {"op": "add", "kind": "subscribe", "topic": "gone", "channel": "email"})
    assert "A subscribe step needs the key of an existing topic (got “gone”)." in bad.content.decode()
    assert automation.steps.count() == 2


def test_api_refuses_a_trigger_naming_a_missing_form(news, tips, marketer):
    api = APIClient()
    api.force_authenticate(marketer)
    body = {"name": "W", "trigger_type": "form_confirmed", "trigger": {"form": "gone"}, "steps": WELCOME_STEPS}
    refused = api.post("/api/v1/automations/", body, format="json")
    assert refused.status_code == 400
    assert "there is none at the address “gone”" in refused.content.decode()
    assert not Automation.objects.exists()
    created = api.post("/api/v1/automations/", body | {"trigger": {"form": "news"}}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["trigger"] == {"form": "news"}
