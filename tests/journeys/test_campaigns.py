"""Campaigns, plain and A/B, on the wire: each email provider kind, each recipient's
language, then a person opens, clicks and unsubscribes from the received bytes, and the
report, the analytics API and the console pages show exactly that."""

from datetime import timedelta

import pytest

from marketing.analytics.tasks import roll_up_analytics
from marketing.campaigns.actions import approve_campaign, schedule_campaign, start_campaign, submit_campaign
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.queries import campaign_report
from marketing.campaigns.tasks import run_campaigns
from marketing.models import Campaign
from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage, Subscription
from tests.journeys.conftest import (
    LEAVE_WORDS,
    PIXEL,
    SHOP,
    WORDS,
    assert_analytics_show,
    assert_complete_email,
    bilingual_template,
    delivered_by,
    follow,
    link_targets,
    merged,
    people,
    report_cards,
)
from tests.marketing.conftest import make_people, make_segment, new_campaign

pytestmark = pytest.mark.django_db
SCANNER = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"


def start(campaign, marketer, approver) -> Campaign:
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    return start_campaign(actor=None, campaign=campaign)


def campaign_messages(campaign):
    return OutboxMessage.objects.filter(campaign_recipient__campaign=campaign)


def test_campaign_journey(email_wire, daytime, marketer, approver, newsletter, client):
    # given Ada (English) and Julie (French) in a campaign of a template with a French variant
    ada, julie = people(newsletter)
    version = bilingual_template(marketer, newsletter, unsubscribe_link=True)
    campaign = start(new_campaign(marketer, newsletter, make_segment("Both", [ada, julie]), version), marketer, approver)
    # when it fans out and the outbox drains into the provider
    fan_out(campaign=campaign)
    send_due_messages()
    assert set(campaign_messages(campaign).values_list("status", flat=True)) == {OutboxMessage.Status.SENT}
    # then each received a complete marketing email, merged, in their language
    for contact in (ada, julie):
        received = email_wire.to(contact.email)
        assert_complete_email(received, marketing=True, merged=merged(contact), words=WORDS[contact.locale] + LEAVE_WORDS[contact.locale])
        assert set(link_targets(received).values()) == {SHOP}
    # when a security gateway fetches Ada's pixel and link (flagged automated: not people)
    ada_mail = email_wire.to(ada.email)
    for url in (PIXEL.search(ada_mail.html).group(1), next(iter(link_targets(ada_mail)))):
        assert client.get(url, HTTP_USER_AGENT=SCANNER).status_code in (200, 302)
    # and Julie opens, clicks and one-click unsubscribes, from the bytes she received
    done = follow(email_wire.to(julie.email), client)
    assert done.opens == 1 and list(done.clicks.values()) == [SHOP] and done.unsubscribed
    assert not Subscription.objects.filter(contact=julie, topic=newsletter, status=Subscription.Status.SUBSCRIBED).exists()
    assert Subscription.objects.filter(contact=ada, topic=newsletter, status=Subscription.Status.SUBSCRIBED).exists()
    roll_up_analytics()
    # then the report, the analytics API and the console pages show exactly that
    delivered = delivered_by(email_wire, 2)
    report = campaign_report(campaign)
    assert {k: report[k] for k in ("sent", "delivered", "opens", "clicks", "unsubscribes")} == {
        "sent": 2,
        "delivered": delivered,
        "opens": 1,
        "clicks": 1,
        "unsubscribes": 1,
    }
    cards = report_cards(client, marketer, campaign)
    assert {k: cards[k] for k in ("Sent", "Delivered", "Opens", "Clicks", "Unsubscribes")} == {
        "Sent": "2",
        "Delivered": str(delivered),
        "Opens": "1",
        "Clicks": "1",
        "Unsubscribes": "1",
    }
    assert [(link["url"], link["clicks"]) for link in report["links"]] == [(SHOP, 1)]
    assert_analytics_show(client, marketer, by="campaign", pk=campaign.pk, sent=2, delivered=delivered, opens=1, clicks=1, unsubscribes=1)


def test_ab_campaign_journey(email_wire, daytime, marketer, approver, newsletter, client):
    # given an A/B test of two subjects over four people (the test share: one per variant)
    ada, julie = people(newsletter)

    others = make_people(newsletter, 2, prefix="ab", attributes={"plan": "bronze"})
    version = bilingual_template(marketer, newsletter, unsubscribe_link=True)
    campaign = new_campaign(
        marketer,
        newsletter,
        make_segment("Four", [ada, julie, *others]),
        version,
        ab_test_share=50,
        ab_wait_hours=1,
        ab_metric=Campaign.Metric.CLICK,
        variants=[{"subject": "A: {{ contact.first_name }}"}, {"subject": "B: {{ contact.first_name }}"}],
    )
    campaign = start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    tested = list(campaign_messages(campaign).filter(status=OutboxMessage.Status.SENT).select_related("contact"))
    assert len(tested) == 2
    for message in tested:
        received = email_wire.to(message.to_address)
        label = message.metadata["variant"]
        assert received.subject == f"{label}: {message.contact.first_name}"
        assert_complete_email(received, marketing=True, merged=merged(message.contact), words=WORDS[message.contact.locale])
    # when the B reader clicks (and so opens) and unsubscribes
    b_message = next(m for m in tested if m.metadata["variant"] == "B")
    done = follow(email_wire.to(b_message.to_address), client)
    assert list(done.clicks.values()) == [SHOP]
    # then after the wait B wins and goes to the other two
    daytime.shift(timedelta(hours=2))
    run_campaigns()
    send_due_messages()
    campaign.refresh_from_db()
    assert campaign.winner.label == "B"
    rest = campaign_messages(campaign).exclude(pk__in=[m.pk for m in tested]).select_related("contact")
    assert rest.count() == 2
    for message in rest:
        assert message.status == OutboxMessage.Status.SENT, message.error
        received = email_wire.to(message.to_address)
        assert received.subject == f"B: {message.contact.first_name}"
        assert_complete_email(received, marketing=True, merged=merged(message.contact), words=WORDS[message.contact.locale])
    roll_up_analytics()
    report = campaign_report(campaign)
    variants = [(v["label"], v["sent"], v["opens"], v["clicks"], v["unsubscribes"], v["is_winner"]) for v in report["variants"]]
    assert variants == [("A", 1, 0, 0, 0, False), ("B", 3, 1, 1, 1, True)]
    delivered = delivered_by(email_wire, 4)
    assert {k: report[k] for k in ("sent", "delivered", "opens", "clicks", "unsubscribes")} == {
        "sent": 4,
        "delivered": delivered,
        "opens": 1,
        "clicks": 1,
        "unsubscribes": 1,
    }
    assert_analytics_show(client, marketer, by="campaign", pk=campaign.pk, sent=4, delivered=delivered, opens=1, clicks=1, unsubscribes=1)
