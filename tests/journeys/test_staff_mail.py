"""Mail to staff on the wire: console test sends (the template editor's, a provider's) and
approval notifications. They are not marketing mail, whatever the template's topic: no
List-Unsubscribe, no footer, and no open or click tracking of a colleague; otherwise complete
(merged, no leftovers, DKIM that verifies). Email provider kinds only."""

import pytest

from marketing.campaigns.actions import approve_campaign, submit_campaign
from messaging.delivery.sending import send_due_messages
from messaging.models import OutboxMessage, Provider
from tests.journeys.conftest import WORDS, assert_complete_email, bilingual_template, people
from tests.marketing.conftest import make_segment, new_campaign

pytestmark = pytest.mark.django_db


def test_template_editor_test_send(email_wire, marketer, newsletter, client):
    # given a marketing template (newsletter topic) with an English and a French variant
    version = bilingual_template(marketer, newsletter, unsubscribe_link=True)
    client.force_login(marketer)
    # when the marketer test-sends it from the editor
    response = client.post(f"/admin/messaging/template/{version.template.pk}/editor/test-send/", {"to": "qa@example.com"})
    assert 'data-testid="test-send-result"' in response.content.decode()
    message = OutboxMessage.objects.get(to_address="qa@example.com")
    assert message.status == OutboxMessage.Status.SENT, message.error
    # then it arrived now, merged with the sample contact, and not as marketing mail
    received = email_wire.to("qa@example.com")
    assert_complete_email(received, marketing=False, merged=("Ada", "pro"), words=WORDS["en"])
    assert "Suppressed" not in response.content.decode()


def test_provider_test_send(email_wire, ops, client):
    provider = Provider.objects.get()
    client.force_login(ops)
    done = client.post(
        "/admin/messaging/provider/", {"action": "send_test", "_selected_action": [provider.pk], "to": "ops-desk@example.com"}, follow=True
    )
    assert done.status_code == 200
    received = email_wire.to("ops-desk@example.com")
    assert_complete_email(received, marketing=False, merged=(f"“{provider.name}”",))
    assert received.subject == "Mailroom test message"


def test_approval_notifications(email_wire, marketer, approver, newsletter):
    # given a campaign whose name needs escaping in HTML, but not in a plain-text email
    ada, julie = people(newsletter)
    version = bilingual_template(marketer, newsletter, unsubscribe_link=True)
    campaign = new_campaign(marketer, newsletter, make_segment("Both", [ada, julie]), version)
    campaign.name = "Spring & <Summer> 'sale'"
    campaign.save(update_fields=["name"])
    # when the marketer submits it, and the approver approves it
    submit_campaign(actor=marketer, campaign=campaign)
    send_due_messages()
    waiting = email_wire.to(approver.email)
    approve_campaign(actor=approver, campaign=campaign)
    send_due_messages()
    # then the approver was asked, and the author told, each in a complete non-marketing email
    assert_complete_email(waiting, marketing=False, merged=("Spring & <Summer> 'sale'", "marketer", "http://testserver/admin/"))
    assert waiting.subject == "Waiting for your approval: Spring & <Summer> 'sale'"
    told = email_wire.to(marketer.email)
    assert_complete_email(told, marketing=False, merged=("Spring & <Summer> 'sale'", "http://testserver/admin/"))
