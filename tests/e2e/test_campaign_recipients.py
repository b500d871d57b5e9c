"""A campaign's merge data and recipients in a real browser: bad merge data is refused in
the wizard with the reason, good data shows on the overview; while the campaign sends, the
marketer removes one recipient after a confirmation page. Screenshots:
test-results/screenshots/campaign-9-*.png and campaign-10-*.png."""

import pytest
from playwright.sync_api import expect

from marketing.campaigns.actions import approve_campaign, create_campaign, schedule_campaign, start_campaign, submit_campaign
from marketing.campaigns.fanout import fan_out
from marketing.models import Campaign, CampaignRecipient
from messaging.models import OutboxMessage
from tests.e2e.test_campaigns import log_in, shot
from tests.marketing.conftest import SENDER, make_people, make_segment, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER


def test_merge_data_in_the_wizard_then_a_recipient_removed_while_it_sends(page, live_server, marketer, approver, newsletter):
    # given a draft to three guests
    guests = make_people(newsletter, 3, prefix="guest")
    version = make_version(marketer, newsletter)
    campaign = create_campaign(
        actor=marketer, name="Guests", topic=newsletter, template_version=version, segments=[make_segment("Guests", guests)]
    )
    log_in(page, live_server, marketer)

    # when the marketer gives merge data with a name no template can use
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/edit/")
    page.get_by_role("button", name="3. Content").click()
    page.fill("#id_context", '{"promo-code": "SPRING"}')
    page.get_by_test_id("wizard-save").click()
    # then the wizard says why and nothing is saved
    expect(page.get_by_test_id("wizard-errors")).to_contain_text("not a name a template can use")
    shot(page, "9-merge-data-refused")
    assert Campaign.objects.get(pk=campaign.pk).context == {}
    # when she corrects it / then the overview shows it
    page.get_by_role("button", name="3. Content").click()
    page.fill("#id_context", '{"promo_code": "SPRING"}')
    page.get_by_test_id("wizard-save").click()
    expect(page.get_by_test_id("merge-data")).to_have_text("promo_code = SPRING")

    # given the campaign approved and sending
    submit_campaign(actor=marketer, campaign=campaign)
    approve_campaign(actor=approver, campaign=campaign)
    schedule_campaign(actor=marketer, campaign=campaign)
    fan_out(campaign=start_campaign(actor=None, campaign=campaign))

    # when she opens its recipients from the overview and removes the first guest
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/overview/")
    page.get_by_test_id("recipients-link").click()
    expect(page.get_by_test_id("recipient-row")).to_have_count(3)
    page.get_by_test_id("remove-recipient").first.click()
    expect(page.get_by_test_id("remove-recipient-confirm")).to_contain_text(guests[0].email)
    assert CampaignRecipient.objects.get(contact=guests[0]).status == "queued"  # asking changes nothing
    page.get_by_test_id("confirm-remove").click()
    # then she is told, the skipped filter shows the guest and the message is cancelled
    expect(page.get_by_text(f"{guests[0].email} will not get this campaign.")).to_be_visible()
    page.locator('[data-testid="recipient-filter"][data-status="skipped"]').click()
    expect(page.get_by_test_id("recipient-row")).to_have_count(1)
    expect(page.get_by_test_id("recipient-row")).to_contain_text("Removed by hand")
    shot(page, "10-recipient-removed")
    assert OutboxMessage.objects.get(contact=guests[0]).status == OutboxMessage.Status.CANCELLED
    assert OutboxMessage.objects.filter(campaign_recipient__campaign=campaign, status="queued").count() == 2
