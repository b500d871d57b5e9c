"""Taking one contact out of a campaign while it sends (seed 000's "suppress specific
recipients"): a queued message is cancelled, one not created yet never is, a sent one
stays; the console asks first; the state and the roles are checked."""

import pytest

from marketing.campaigns.actions import cancel_campaign, remove_recipient
from marketing.campaigns.fanout import create_messages, fan_out, prepare_recipients
from marketing.campaigns.states import CampaignStateError
from marketing.models import CampaignRecipient
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import AuditEntry, OutboxMessage

pytestmark = pytest.mark.django_db


def recipient_of(campaign, person):
    return CampaignRecipient.objects.get(campaign=campaign, contact=person)


def test_a_queued_message_is_cancelled_and_the_rest_still_go(marketer, sending, people):
    fan_out(campaign=sending)
    removed = remove_recipient(actor=marketer, recipient=recipient_of(sending, people[0]))
    assert (removed.status, removed.skip_reason) == ("skipped", "removed")
    assert OutboxMessage.objects.get(pk=removed.message_id).status == OutboxMessage.Status.CANCELLED
    send_due_messages()
    sent = OutboxMessage.objects.filter(campaign_recipient__campaign=sending, status=OutboxMessage.Status.SENT)
    assert sorted(sent.values_list("to_address", flat=True)) == sorted(p.email for p in people[1:])
    assert AuditEntry.objects.filter(verb="recipient removed", target_id=str(sending.pk)).count() == 1


def test_a_message_not_created_yet_never_is(marketer, sending, people, settings):
    settings.MAILROOM_FANOUT_CHUNK = 2
    prepare_recipients(campaign=sending)
    last = people[-1]
    remove_recipient(actor=marketer, recipient=recipient_of(sending, last))
    create_messages(campaign=sending)
    assert not OutboxMessage.objects.filter(contact=last, campaign_recipient__campaign=sending).exists()
    assert OutboxMessage.objects.filter(campaign_recipient__campaign=sending).count() == 5


def test_a_sent_message_stays_and_the_refusals_say_why(marketer, sending, people):
    fan_out(campaign=sending)
    send_due_messages(limit=3, time_budget=0.001)  # one batch: the rest keeps the campaign sending
    sent = next(p for p in people if recipient_of(sending, p).message.status == "sent")
    with pytest.raises(CampaignStateError, match="already sent"):
        remove_recipient(actor=marketer, recipient=recipient_of(sending, sent))
    assert recipient_of(sending, sent).status == "queued"
    cancel_campaign(actor=marketer, campaign=sending)
    with pytest.raises(CampaignStateError, match="sending or paused"):
        remove_recipient(actor=marketer, recipient=recipient_of(sending, people[1]))


def test_the_console_asks_then_removes_and_an_approver_may_not(client, marketer, approver, sending, people):
    fan_out(campaign=sending)
    row = recipient_of(sending, people[0])
    url = f"/admin/marketing/campaign/{sending.pk}/recipients/{row.pk}/remove/"
    client.force_login(marketer)
    listing = client.get(f"/admin/marketing/campaign/{sending.pk}/recipients/").content.decode()
    assert listing.count('data-testid="remove-recipient"') == 6
    confirm = client.get(url)
    assert confirm.status_code == 200 and b'data-testid="confirm-remove"' in confirm.content
    assert recipient_of(sending, people[0]).status == "queued"  # asking changed nothing
    done = client.post(url, follow=True)
    assert "will not get this campaign" in done.content.decode() and recipient_of(sending, people[0]).status == "skipped"
    again = client.post(url, follow=True)
    assert "already left out" in again.content.decode()
    client.force_login(approver)
    assert (
        client.post(f"/admin/marketing/campaign/{sending.pk}/recipients/{recipient_of(sending, people[1]).pk}/remove/").status_code == 403
    )
    assert recipient_of(sending, people[1]).status == "queued"


def test_the_outbox_filters_by_origin_and_by_campaign(client, marketer, sending, people):
    fan_out(campaign=sending)
    enqueue_message(channel="email", to="buyer@example.com", subject="Receipt", text="Paid", dedup_key="order-1")
    client.force_login(marketer)
    recipients_page = client.get(f"/admin/marketing/campaign/{sending.pk}/recipients/").content.decode()
    assert f"/admin/messaging/outboxmessage/?origin=campaign:{sending.pk}" in recipients_page

    def listed(origin: str) -> str:
        return client.get("/admin/messaging/outboxmessage/", {"origin": origin}).content.decode()

    own = listed(f"campaign:{sending.pk}")
    assert all(p.email in own for p in people) and "buyer@example.com" not in own
    assert "buyer@example.com" not in listed(f"campaign:{sending.pk + 1}") and people[0].email not in listed(f"campaign:{sending.pk + 1}")
    other = listed("other")
    assert "buyer@example.com" in other and people[0].email not in other
