"""An automation's send step on the wire: email through every email provider kind, SMS
through the HTTP provider (a local server) and the sandbox; each contact in their language;
then a person opens, clicks and unsubscribes, and the analytics show exactly that."""

import pytest

from marketing.analytics.tasks import roll_up_analytics
from marketing.automations.actions import create_automation
from marketing.automations.queries import automation_report
from marketing.automations.runner import run_due_steps
from marketing.automations.triggers import scan_triggers
from marketing.events import track_event
from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage
from tests.journeys.conftest import (
    FOOTER_WORDS,
    SHOP,
    SMS_WORDS,
    WORDS,
    assert_analytics_show,
    assert_complete_email,
    assert_complete_text,
    bilingual_template,
    delivered_by,
    follow,
    link_targets,
    merged,
    people,
)
from tests.marketing.conftest import go_live

pytestmark = pytest.mark.django_db


def flow_for(contacts, *, template: str, channel: str):
    flow = go_live(
        create_automation(
            actor=None,
            name=f"Journey {channel}",
            trigger_type="event",
            trigger={"events": ["signed_up"]},
            steps=[{"kind": "send", "config": {"template": template, "channel": channel}}],
        )
    )
    for contact in contacts:
        track_event(contact=contact, name="signed_up")
    scan_triggers()
    run_due_steps(owner="test")
    send_due_messages(owner="test")
    messages = OutboxMessage.objects.filter(automation_logs__run__automation=flow).distinct()
    assert [(m.to_address, m.status, m.error) for m in messages if m.status != OutboxMessage.Status.SENT] == []
    assert messages.count() == len(contacts)
    return flow


def test_automation_email_journey(email_wire, daytime, on_commit_now, marketer, newsletter, client):
    # given a live automation sending a template with a French variant, and Ada and Julie signing up
    ada, julie = people(newsletter)
    bilingual_template(marketer, newsletter)
    flow = flow_for([ada, julie], template="journey", channel="email")
    # then each received a complete marketing email, merged, in their language (footer included)
    for contact in (ada, julie):
        received = email_wire.to(contact.email)
        assert_complete_email(received, marketing=True, merged=merged(contact), words=WORDS[contact.locale] + FOOTER_WORDS[contact.locale])
        assert set(link_targets(received).values()) == {SHOP}
    # when Ada opens, clicks and unsubscribes
    done = follow(email_wire.to(ada.email), client)
    assert list(done.clicks.values()) == [SHOP] and done.unsubscribed
    roll_up_analytics()
    # then the automation's figures are exactly that
    report = automation_report(automation=flow)
    assert (report["entered"], report["messages_sent"]) == (2, 2)
    assert_analytics_show(
        client, marketer, by="automation", pk=flow.pk, sent=2, delivered=delivered_by(email_wire, 2), opens=1, clicks=1, unsubscribes=1
    )


def test_automation_sms_journey(text_wire, daytime, on_commit_now, marketer, newsletter, client):
    # given an SMS automation, Ada and Julie consenting to SMS
    ada, julie = people(newsletter, channels=("sms",))
    bilingual_template(marketer, newsletter, key="journey-sms", channel="sms")
    flow = flow_for([ada, julie], template="journey-sms", channel="sms")
    # then the provider received each SMS merged, in their language, links as written
    for contact in (ada, julie):
        received = text_wire.to(contact.phone)
        assert_complete_text(received, merged=merged(contact), words=SMS_WORDS[contact.locale])
        assert "https://shop.example.com/s " in received.text  # SMS links are not tracked (product rule)
        assert "http://testserver/p/" in received.text  # the preferences link, filled for this message
    roll_up_analytics()
    assert_analytics_show(
        client, marketer, by="automation", pk=flow.pk, sent=2, delivered=delivered_by(text_wire, 2), opens=0, clicks=0, unsubscribes=0
    )
