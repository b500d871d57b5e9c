"""A complaint an ESP reports through its anymail webhook counts toward the campaign's
automatic pause, like any other complaint."""

import base64
import json

import pytest

from marketing.campaigns.fanout import fan_out
from marketing.campaigns.guardrails import delivery_rates
from marketing.campaigns.tasks import run_campaigns
from marketing.models import Campaign
from messaging.delivery.sending import send_due_messages
from messaging.mailbox import poll_email_inbox
from messaging.models import Inbox, OutboxMessage, Suppression
from tests.marketing.conftest import make_people, make_segment, new_campaign
from tests.marketing.test_campaigns_sending import approve_and_start, campaign_messages
from tests.messaging.test_imap_inbox import arf_report, make_inbox
from tests.support.dovecot import PASSWORD, Dovecot

pytestmark = pytest.mark.django_db


def test_a_postmark_spam_complaint_pauses_the_campaign_that_caused_it(client, marketer, approver, newsletter, version, settings):
    settings.MAILROOM_GUARDRAIL_MIN_SENT = 10
    settings.ANYMAIL = {"WEBHOOK_SECRET": "user:pass"}
    campaign = new_campaign(marketer, newsletter, make_segment("Twenty", make_people(newsletter, 20, prefix="c")), version)
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages(limit=12, time_budget=0.001)
    message = campaign_messages(campaign).filter(status=OutboxMessage.Status.SENT).first()
    OutboxMessage.objects.filter(pk=message.pk).update(provider_message_id="pm-message-1")  # the ESP's id, as recorded at send
    complaint = {
        "RecordType": "SpamComplaint",
        "ID": 43,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "MessageID": "pm-message-1",
        "Email": message.to_address,
        "BouncedAt": "2016-04-27T16:28:50.3963933-04:00",
        "Tag": "",
        "Metadata": {},
    }
    auth = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
    for _replay in range(2):
        response = client.post("/webhooks/anymail/postmark/tracking/", json.dumps(complaint), content_type="application/json", headers=auth)
        assert response.status_code == 200
    assert delivery_rates(campaign).complaints == 1
    assert Suppression.objects.get(address=message.to_address).reason == "complaint"
    run_campaigns()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED and "complaint rate" in campaign.pause_reason


def test_a_feedback_loop_complaint_read_over_imap_pauses_the_campaign_too(marketer, approver, newsletter, version, settings):
    """The same path as the ESP's: an ARF report in the inbox's mailbox is a complaint on the
    campaign message it names, and the guardrail pauses the campaign for it."""

    settings.MAILROOM_GUARDRAIL_MIN_SENT = 10
    settings.MAILROOM_SECRETS = {"IMAP": PASSWORD}
    campaign = new_campaign(marketer, newsletter, make_segment("Twenty", make_people(newsletter, 20, prefix="c")), version)
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages(limit=12, time_budget=0.001)
    message = campaign_messages(campaign).filter(status=OutboxMessage.Status.SENT).first()
    with Dovecot() as server:
        inbox: Inbox = make_inbox(server)
        server.append(arf_report(message))
        assert poll_email_inbox(inbox=inbox).read == 1
        assert poll_email_inbox(inbox=inbox).read == 0
    assert delivery_rates(campaign).complaints == 1
    assert Suppression.objects.get(address=message.to_address).reason == "complaint"
    run_campaigns()
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED and "complaint rate" in campaign.pause_reason
