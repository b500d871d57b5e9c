"""A campaign's mail to a contact on the weekly digest: held (body rendered or not), then
listed in their Monday digest with a view-in-browser link showing the campaign as rendered."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from marketing.campaigns.fanout import fan_out
from messaging import tasks
from messaging.consent import ConsentContext
from messaging.delivery.sending import send_due_messages
from messaging.digest import HELD, IN_DIGEST_PREFIX
from messaging.models import OutboxMessage, SandboxMessage
from messaging.preferences import set_marketing_frequency

pytestmark = pytest.mark.django_db


def next_monday_0905_utc():
    now = timezone.now()
    monday = (now + timedelta(days=(7 - now.weekday()) % 7 or 7)).replace(hour=9, minute=5, second=0, microsecond=0)
    return monday


def test_a_campaign_mail_held_for_a_digest_contact_goes_in_their_monday_digest(settings, sending, people):
    settings.MAILROOM_KICK_CLUSTER = False
    weekly = people[0]  # in UTC
    set_marketing_frequency(actor=None, contact=weekly, frequency="weekly", context=ConsentContext())
    fan_out(campaign=sending)
    send_due_messages()
    held = OutboxMessage.objects.get(campaign_recipient__campaign=sending, contact=weekly)
    assert (held.status, held.error) == ("suppressed", HELD)
    assert not SandboxMessage.objects.filter(to_address=weekly.email).exists()
    assert SandboxMessage.objects.filter(to_address=people[1].email).exists()  # everyone else got it
    with time_machine.travel(next_monday_0905_utc(), tick=False):
        assert tasks.send_weekly_digests() == 1
        send_due_messages()
        digest = SandboxMessage.objects.get(to_address=weekly.email)
        held.refresh_from_db()
        assert held.subject and held.subject in digest.body_text  # rendered when the digest was made
        assert held.error.startswith(IN_DIGEST_PREFIX) and held.status == "suppressed"
        (path,) = re.findall(r"https?://[^/\s]+(/v/[^/\s]+/)", digest.body_text)
        page = Client().get(path)
        assert page.status_code == 200 and weekly.first_name in page.content.decode()
