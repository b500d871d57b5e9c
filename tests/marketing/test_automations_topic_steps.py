"""Automation steps that change a contact's consent and attributes (issue 20, item 2):
subscribe to a topic, unsubscribe from one, set an attribute or tag, each through the
messaging action that owns the rule, and each failing cleanly with nothing half-written."""

import pytest

from marketing.automations.actions import create_automation
from marketing.automations.describe import describe_step
from marketing.automations.runner import run_due_steps
from marketing.automations.steps.validation import clean_step_config
from marketing.events import track_event
from marketing.models import AutomationRun, AutomationStep, AutomationStepLog
from messaging.consent import ConsentContext, subscribe
from messaging.contacts import create_contact, erase_contact
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, ConsentRecord, OutboxMessage, Subscription, Template, Topic
from messaging.preferences import set_subscriptions
from tests.marketing.conftest import go_live

pytestmark = pytest.mark.django_db
Status = AutomationRun.Status
Outcome = AutomationStepLog.Outcome


@pytest.fixture
def tips(catalog) -> Topic:
    return Topic.objects.create(key="tips", name="Tips", kind=Topic.Kind.MARKETING)


def flow(*steps, name="Flow"):
    return go_live(create_automation(actor=None, name=name, trigger_type="event", trigger={"events": ["signed_up"]}, steps=list(steps)))


def start(contact, committed) -> None:
    with committed():
        track_event(contact=contact, name="signed_up")


def ada(**fields):
    return create_contact(actor=None, email="ada@example.com", first_name="Ada", **fields)


def subscription_status(contact, topic) -> str | None:
    return Subscription.objects.filter(contact=contact, topic=topic, channel="email").values_list("status", flat=True).first()


# --- subscribe --------------------------------------------------------------------------------
def test_subscribe_step_subscribes_with_a_consent_record_naming_the_automation(tips, clock, tick, committed):
    automation = flow({"kind": "subscribe", "config": {"topic": "tips"}})
    contact = ada()
    start(contact, committed)
    tick()
    assert subscription_status(contact, tips) == Subscription.Status.SUBSCRIBED
    record = ConsentRecord.objects.get(contact=contact, topic=tips)
    run = automation.runs.get()
    assert record.action == ConsentRecord.Action.GRANTED and record.channel == "email"
    assert record.source == ConsentRecord.Source.SYSTEM
    assert record.details == {"automation": automation.pk, "automation_name": "Flow", "step": 1, "run": run.pk}
    assert run.status == Status.COMPLETED
    assert list(run.logs.values_list("outcome", "detail")) == [(Outcome.UPDATED, "Subscribed to “Tips” (email).")]


def test_subscribing_someone_already_subscribed_writes_no_second_record(tips, clock, tick, committed):
    flow({"kind": "subscribe", "config": {"topic": "tips"}})
    contact = ada()
    subscribe(actor=None, contact=contact, topic=tips)
    start(contact, committed)
    tick()
    assert ConsentRecord.objects.filter(contact=contact, topic=tips).count() == 1
    assert subscription_status(contact, tips) == Subscription.Status.SUBSCRIBED


def test_a_subscribe_step_whose_topic_was_deleted_fails_clearly_and_writes_nothing(tips, clock, tick, committed):
    automation = flow(
        {"kind": "update", "config": {"set": {"welcomed": True}}},
        {"kind": "subscribe", "config": {"topic": "tips"}},
        {"kind": "update", "config": {"set": {"after": True}}},
    )
    tips.delete()  # allowed: no subscription or consent record holds it yet
    contact = ada()
    start(contact, committed)
    tick()
    run = automation.runs.get()
    assert run.status == Status.FAILED and run.exit_reason == "The topic “tips” no longer exists."
    assert list(run.logs.values_list("outcome", flat=True)) == [Outcome.UPDATED, Outcome.FAILED]
    contact.refresh_from_db()
    assert contact.attributes == {"welcomed": True}  # the step before it happened, the one after did not
    assert not Subscription.objects.exists() and not ConsentRecord.objects.exists()


def test_a_subscribe_step_for_an_erased_contact_fails_and_subscribes_nothing(tips, clock, tick, committed):
    automation = flow({"kind": "wait", "config": {"hours": 1}}, {"kind": "subscribe", "config": {"topic": "tips"}})
    contact = ada()
    start(contact, committed)
    tick()
    erase_contact(actor=None, contact=contact)
    clock.shift(3600)
    tick()
    run = automation.runs.get()
    assert run.status == Status.FAILED and run.exit_reason == "A deleted or erased contact cannot be subscribed."
    assert not Subscription.objects.filter(status=Subscription.Status.SUBSCRIBED).exists()
    assert not ConsentRecord.objects.exists()


# --- unsubscribe ------------------------------------------------------------------------------
def test_unsubscribe_step_unsubscribes_and_cancels_the_topics_queued_messages(tips, catalog, clock, tick, committed):
    automation = flow({"kind": "unsubscribe", "config": {"topic": "tips", "channel": "email"}})
    contact = ada()
    set_subscriptions(
        actor=None,
        contact=contact,
        choices=[(tips, "email", "subscribed"), (catalog["newsletter"], "email", "subscribed")],
        context=ConsentContext(),
    )
    welcome = Template.objects.filter(key="welcome").first()
    queued = enqueue_message(channel="email", contact=contact, template=welcome, topic=tips)
    other = enqueue_message(channel="email", contact=contact, template=welcome, topic=catalog["newsletter"])
    start(contact, committed)
    run_due_steps(owner="test")  # the runner alone: the queued message is not sent first
    assert subscription_status(contact, tips) == Subscription.Status.UNSUBSCRIBED
    assert subscription_status(contact, catalog["newsletter"]) == Subscription.Status.SUBSCRIBED  # only that topic
    record = ConsentRecord.objects.filter(contact=contact, topic=tips).latest("id")
    assert record.action == ConsentRecord.Action.WITHDRAWN and record.details["automation"] == automation.pk
    queued.refresh_from_db()
    other.refresh_from_db()
    assert (queued.status, other.status) == (OutboxMessage.Status.CANCELLED, OutboxMessage.Status.QUEUED)
    assert automation.runs.get().status == Status.COMPLETED


# --- settings refused before anything is stored --------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("subscribe", {"topic": "nope"}, "A subscribe step needs the key of an existing topic (got “nope”)."),
        ("subscribe", {}, "A subscribe step needs the key of an existing topic (got “”)."),
        ("unsubscribe", {"topic": "nope"}, "An unsubscribe step needs the key of an existing topic (got “nope”)."),
        ("subscribe", {"topic": "tips", "channel": "pigeon"}, "Unknown channel “pigeon”."),
    ],
)
def test_a_topic_step_with_bad_settings_is_refused_with_one_sentence(tips, kind, config, message):
    with pytest.raises(InvalidInput) as error:
        clean_step_config(kind=kind, config=config)
    assert str(error.value) == message
    with pytest.raises(InvalidInput):
        create_automation(actor=None, name="Bad", trigger_type="event", trigger={"events": ["x"]}, steps=[{"kind": kind, "config": config}])
    assert not AutomationStep.objects.exists()


def test_a_topic_steps_channel_defaults_to_email(tips):
    assert clean_step_config(kind="subscribe", config={"topic": "tips"}) == {"topic": "tips", "channel": "email"}


def test_topic_steps_read_as_sentences(tips):
    assert describe_step("subscribe", {"topic": "tips", "channel": "email"}) == "Subscribe the contact to “Tips” by email"
    assert describe_step("unsubscribe", {"topic": "tips", "channel": "sms"}) == "Unsubscribe the contact from “Tips” by SMS"
    assert str(AutomationStep.Kind.UPDATE.label) == "Set attribute or tag"


# --- set attribute --------------------------------------------------------------------------------
def test_set_attribute_step_goes_through_the_contact_action_and_is_audited(catalog, clock, tick, committed):
    automation = flow({"kind": "update", "config": {"set": {"welcomed": True}, "add_tag": "new"}})
    contact = ada(attributes={"plan": "pro"})
    start(contact, committed)
    tick()
    contact.refresh_from_db()
    assert contact.attributes == {"plan": "pro", "welcomed": True, "tags": ["new"]}
    assert list(automation.runs.get().logs.values_list("detail", flat=True)) == ["tags, welcomed"]
    entry = AuditEntry.objects.filter(verb="updated", target_id=str(contact.pk)).latest("id")
    assert entry.changes["attributes"]["after"] == {"plan": "pro", "welcomed": True, "tags": ["new"]}


def test_set_attribute_on_an_erased_contact_fails_and_changes_nothing(catalog, clock, tick, committed):
    automation = flow({"kind": "wait", "config": {"hours": 1}}, {"kind": "update", "config": {"set": {"welcomed": True}}})
    contact = ada()
    start(contact, committed)
    tick()
    erase_contact(actor=None, contact=contact)
    clock.shift(3600)
    tick()
    run = automation.runs.get()
    assert run.status == Status.FAILED and run.exit_reason == "An erased contact cannot be changed."
    contact.refresh_from_db()
    assert contact.attributes == {}
