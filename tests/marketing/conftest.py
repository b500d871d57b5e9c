"""Marketing fixtures. Automations: the demo topics and the template catalog, a clock to
move, and `tick()` that runs what the cluster would. Campaigns: a marketing template
version, an audience in a static segment, and campaigns brought to each state through the
actions (never by setting fields)."""

import functools
from collections.abc import Callable
from datetime import UTC, datetime, time

import pytest
import time_machine

from marketing.automations.actions import activate_automation
from marketing.automations.approval import approve_automation
from marketing.automations.runner import run_due_steps
from marketing.automations.triggers import scan_triggers
from marketing.campaigns.actions import (
    approve_campaign,
    cancel_campaign,
    complete_campaign,
    create_campaign,
    pause_campaign,
    schedule_campaign,
    start_campaign,
    submit_campaign,
)
from marketing.campaigns.fanout import fan_out
from marketing.models import Campaign
from marketing.segments.actions import add_static_members, create_segment
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.content import versions
from messaging.content.catalog import sync_catalog
from messaging.content.rendering import compile_body
from messaging.content.versions import activate_template_version, create_template, save_template_version
from messaging.delivery.sending import send_due_messages
from messaging.models import SandboxMessage, Topic

TOPICS = [
    ("newsletter", "Newsletter", Topic.Kind.MARKETING),
    ("product-news", "Product news", Topic.Kind.MARKETING),
    ("promotions", "Promotions", Topic.Kind.MARKETING),
    ("reminders", "Reminders", Topic.Kind.MARKETING),
    ("progress-reports", "Progress reports", Topic.Kind.MARKETING),
    ("account", "Account and orders", Topic.Kind.TRANSACTIONAL),
]

# A Tuesday, 10:00 UTC (12:00 in Paris): outside any quiet hours.
START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


# MJML + CSS inlining of the 44 catalog files costs ~4 s; the output only depends on the
# source, so the test session compiles each file once.
_compile_once = functools.cache(compile_body)


@pytest.fixture
def catalog(db, settings, monkeypatch) -> dict[str, Topic]:
    """Topics and the whole template catalog."""
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom, 1 rue de la Paix, 75002 Paris"
    settings.MAILROOM_KICK_CLUSTER = False
    monkeypatch.setattr(versions, "compile_body", _compile_once)
    topics = {key: Topic.objects.get_or_create(key=key, defaults={"name": name, "kind": kind})[0] for key, name, kind in TOPICS}
    sync_catalog()
    return topics


@pytest.fixture
def committed(django_capture_on_commit_callbacks) -> Callable:
    """`with committed():` around what a request or a task would commit. These tests run in
    one transaction that never commits, so on-commit callbacks (`event_tracked`, which starts
    automations, and the task kicks) run at the end of the block, as after a real commit;
    those they register run too. Work rolled back inside the block runs nothing."""
    return functools.partial(django_capture_on_commit_callbacks, execute=True)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def tick() -> Callable[[], int]:
    def run() -> int:
        scan_triggers()
        steps = run_due_steps(owner="test")
        send_due_messages(owner="test")
        return steps

    return run


def go_live(automation, *, actor=None):
    """Activate an automation the way production does: one that fans out to many contacts
    waits for approval (issue 16, item 3), so a second person (an Approver) approves it."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    automation = activate_automation(actor=actor, automation=automation)
    if automation.state == automation.State.PENDING_APPROVAL:
        reviewer, created = get_user_model().objects.get_or_create(username="reviewer", defaults={"email": "reviewer@staff.test"})
        if created:
            reviewer.groups.add(Group.objects.get(name="Approver"))
        automation = approve_automation(actor=reviewer, automation=automation)
    return automation


def inbox(to: str | None = None) -> list[SandboxMessage]:
    messages = SandboxMessage.objects.order_by("id")
    return list(messages.filter(to_address=to) if to else messages)


SENDER = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
BODY = (
    '<html><body><p>Hello {{ contact.first_name|default:"there" }}</p>'
    '<p><a href="https://shop.example.com/sale">Spring sale</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER
    settings.MAILROOM_BASE_URL = "http://testserver"


def make_version(actor, topic, *, key="spring", subject="News for {{ contact.first_name }}", body=BODY, channel="email"):
    template = create_template(actor=actor, key=key, name=key.title(), category="newsletter", channel=channel, topic=topic)
    version = save_template_version(
        actor=actor, template=template, subject=subject, body_format="html", body=body, sms_body="Hi {{ contact.first_name }}"
    )
    activate_template_version(actor=actor, version=version)
    return version


@pytest.fixture
def version(marketer, newsletter):
    return make_version(marketer, newsletter)


def make_people(topic, n, *, prefix="p", subscribed=True, **fields):
    people = []
    for i in range(n):
        person = create_contact(actor=None, email=f"{prefix}{i}@example.com", first_name=f"{prefix.title()}{i}", **fields)
        if subscribed:
            subscribe(actor=None, contact=person, topic=topic)
        people.append(person)
    return people


def make_segment(name, people, actor=None):
    segment = create_segment(name=name, actor=actor, kind="static")
    add_static_members(segment=segment, identifiers=[p.email for p in people], actor=actor)
    return segment


@pytest.fixture
def people(newsletter):
    return make_people(newsletter, 6)


@pytest.fixture
def segment(people):
    return make_segment("Everyone", people)


def wizard_form(newsletter, segment, version, **fields) -> dict:
    """What the campaign wizard posts for a complete campaign, sent now, with `fields` on top."""
    return {
        "name": "From the wizard",
        "channel": "email",
        "topic": newsletter.pk,
        "segments": [segment.pk],
        "template_version": version.pk,
        "send_mode": "now",
        "local_time": "09:00",
        "ab_test_share": 0,
        "ab_wait_hours": 4,
        "ab_metric": "open",
        "complaint_rate_limit": "0.30",
        "bounce_rate_limit": "5.00",
        "respect_frequency_cap": "on",
        "attribution_days": 5,
        **fields,
    }


def new_campaign(marketer, newsletter, segment, version, **values):
    return create_campaign(actor=marketer, name="Spring sale", topic=newsletter, template_version=version, segments=[segment], **values)


@pytest.fixture
def draft(marketer, newsletter, segment, version):
    return new_campaign(marketer, newsletter, segment, version)


@pytest.fixture
def pending(draft, marketer):
    return submit_campaign(actor=marketer, campaign=draft)


@pytest.fixture
def approved(pending, approver):
    return approve_campaign(actor=approver, campaign=pending)


@pytest.fixture
def scheduled(approved, marketer):
    return schedule_campaign(actor=marketer, campaign=approved)


@pytest.fixture
def sending(scheduled):
    campaign = start_campaign(actor=None, campaign=scheduled)
    assert campaign.state == Campaign.State.SENDING
    return campaign


def at(day, hour: int, minute: int = 0) -> datetime:
    """`day` at hour:minute in the console's time zone."""
    from django.utils import timezone

    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def seed_calendar(*, marketer, approver, topic, segment, version, today) -> dict[str, Campaign]:
    """One campaign in each state the calendar colours, each brought there through the
    actions: sent six days ago, paused two days ago, sending today (those three by moving
    the clock), then cancelled, draft, waiting, approved and scheduled on the next days."""
    from datetime import timedelta

    def make(name, **values):
        return create_campaign(actor=marketer, name=name, topic=topic, template_version=version, segments=[segment], **values)

    def go(campaign, upto):
        steps = [
            (Campaign.State.PENDING_APPROVAL, lambda c: submit_campaign(actor=marketer, campaign=c)),
            (Campaign.State.APPROVED, lambda c: approve_campaign(actor=approver, campaign=c)),
            (Campaign.State.SCHEDULED, lambda c: schedule_campaign(actor=marketer, campaign=c)),
            (Campaign.State.SENDING, lambda c: start_campaign(actor=None, campaign=c)),
        ]
        for state, step in steps:
            campaign = step(campaign)
            assert campaign.state == state, (campaign.name, campaign.state)
            if state == upto:
                break
        return campaign

    def started_on(day, hour, name):
        with time_machine.travel(at(day, hour), tick=False):
            return go(make(name), Campaign.State.SENDING)

    seeded = {}
    sent = started_on(today - timedelta(days=6), 9, "March newsletter")
    with time_machine.travel(at(today - timedelta(days=6), 9, 5), tick=False):  # outside quiet hours
        fan_out(campaign=sent)
        send_due_messages(owner="test")  # the last message sent completes the campaign
        complete_campaign(campaign=sent)
    sent.refresh_from_db()
    assert sent.state == Campaign.State.SENT
    seeded["sent"] = sent
    paused = started_on(today - timedelta(days=2), 10, "Flash sale")
    seeded["paused"] = pause_campaign(actor=marketer, campaign=paused, reason="Checking a price")
    seeded["sending"] = go(make("Spring launch"), Campaign.State.SENDING)
    at_mode = {"send_mode": Campaign.SendMode.AT}
    seeded["cancelled"] = cancel_campaign(actor=marketer, campaign=make("Old promo", send_at=at(today + timedelta(days=1), 14), **at_mode))
    seeded["draft"] = make("Product tips", send_at=at(today + timedelta(days=2), 9, 30), **at_mode)
    seeded["pending_approval"] = go(
        make("Loyalty update", send_at=at(today + timedelta(days=3), 11), **at_mode), Campaign.State.PENDING_APPROVAL
    )
    seeded["approved"] = go(make("Weekend picks", send_at=at(today + timedelta(days=4), 8), **at_mode), Campaign.State.APPROVED)
    seeded["scheduled"] = go(make("Summer preview", send_at=at(today + timedelta(days=2), 10), **at_mode), Campaign.State.SCHEDULED)
    return seeded
