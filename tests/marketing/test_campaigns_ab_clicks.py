"""A/B decisions count people, not requests: 2,400 click events from one message's token
count as one click for the winner, and a link scanner's clicks count for nothing."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from marketing.campaigns.actions import approve_campaign, schedule_campaign, start_campaign, submit_campaign
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.tasks import run_campaigns
from marketing.models import Campaign, CampaignRecipient
from messaging.delivery.sending import send_due_messages
from messaging.delivery.tracking import record_hit
from messaging.models import AuditEntry, DeliveryEvent
from messaging.tokens import Token
from tests.marketing.conftest import make_people, make_segment, new_campaign

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
SCANNER = "Barracuda Sentinel (EE)"


@pytest.fixture
def ab_test(marketer, approver, newsletter, version):
    """Twenty test messages sent, ten per variant; twenty wait for the winner by click rate."""
    people = make_people(newsletter, 40, prefix="ab")
    campaign = new_campaign(
        marketer,
        newsletter,
        make_segment("Forty", people),
        version,
        ab_test_share=50,
        ab_wait_hours=2,
        ab_metric=Campaign.Metric.CLICK,
        variants=[{"subject": "A {{ contact.first_name }}"}, {"subject": "B {{ contact.first_name }}"}],
    )
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    start_campaign(actor=None, campaign=campaign)
    fan_out(campaign=campaign)
    send_due_messages()
    return campaign


def messages_of(campaign, label):
    return [r.message_id for r in CampaignRecipient.objects.filter(campaign=campaign, variant__label=label, is_test=True)]


def click(message_id, *, user_agent=BROWSER):
    token = Token(data=message_id, issued_at=timezone.now() - timedelta(hours=1))  # as read from the click link
    assert record_hit(kind=DeliveryEvent.Kind.CLICKED, message_pk=message_id, token=token, user_agent=user_agent, link_id=None)


def winner_after_the_wait(campaign):
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        run_campaigns()
    campaign.refresh_from_db()
    scores = AuditEntry.objects.get(target_id=str(campaign.pk), verb="picked A/B winner").changes["scores"]
    return campaign.winner.label, scores


def test_2400_click_events_from_one_message_count_once_for_the_ab_winner(ab_test):
    # given two readers of A who each click once, and one reader of B whose token fires 2,400 clicks in seconds
    for message_id in messages_of(ab_test, "A")[:2]:
        click(message_id)
    flooded = messages_of(ab_test, "B")[0]
    for _ in range(2400):
        click(flooded)
    assert DeliveryEvent.objects.filter(message_id=flooded, kind="clicked").count() == 2400
    # then A wins: 2 people against 1
    label, scores = winner_after_the_wait(ab_test)
    assert label == "A" and scores["A"]["clicks"] == 2 and scores["B"]["clicks"] == 1


def test_a_link_scanners_clicks_do_not_decide_the_ab_test(ab_test):
    # given one person clicking in A, and a mail gateway's scanner following every link of five B messages
    click(messages_of(ab_test, "A")[0])
    for message_id in messages_of(ab_test, "B")[:5]:
        click(message_id, user_agent=SCANNER)
    # then A wins, and B's scanned messages count as no click at all
    label, scores = winner_after_the_wait(ab_test)
    assert label == "A" and scores["A"]["clicks"] == 1 and scores["B"]["clicks"] == 0
