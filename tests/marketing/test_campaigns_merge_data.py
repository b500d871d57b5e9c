"""A campaign's merge data (seed 000's "metadata field for custom context"): extra values
every message of the campaign can print, in the dry run and in what is sent; bad data is a
clear error and changes nothing; changing it after approval needs a new approval."""

import pytest

from marketing.campaigns.actions import create_campaign, update_campaign
from marketing.campaigns.fanout import fan_out
from marketing.campaigns.preview import dry_run
from marketing.models import Campaign
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.models import OutboxMessage
from tests.marketing.conftest import make_version, wizard_form
from tests.marketing.test_campaigns_sending import approve_and_start

pytestmark = pytest.mark.django_db
BODY = (
    "<html><body><p>Hello {{ contact.first_name }}, use {{ promo_code }} before {{ offer.ends }}.</p>"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


@pytest.fixture
def promo_version(marketer, newsletter):
    return make_version(marketer, newsletter, key="promo", subject="{{ promo_code }} for {{ contact.first_name }}", body=BODY)


def test_merge_data_reaches_the_dry_run_and_every_sent_message(marketer, approver, newsletter, segment, promo_version):
    # given a campaign with a promo code and an offer end date as merge data
    campaign = create_campaign(
        actor=marketer,
        name="Promo",
        topic=newsletter,
        template_version=promo_version,
        segments=[segment],
        context={"promo_code": "SPRING24", "offer": {"ends": "31 May"}},
    )
    # when it is dry-run / then the samples print them, nothing missing
    sample = dry_run(campaign=campaign).samples[0]
    assert sample.subject.startswith("SPRING24 for ") and "before 31 May" in sample.html and sample.missing == []
    # when it is sent / then each message carries them
    approve_and_start(campaign, marketer, approver)
    fan_out(campaign=campaign)
    send_due_messages()
    sent = OutboxMessage.objects.filter(campaign_recipient__campaign=campaign, status=OutboxMessage.Status.SENT)
    assert sent.count() == 6 and all("use SPRING24 before 31 May" in m.body_html for m in sent)
    assert all(m.subject.startswith("SPRING24 for ") for m in sent)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (["SPRING"], "an object"),
        ({"promo-code": "X"}, "not a name"),
        ({"contact": {"first_name": "Eve"}}, "filled in by Mailroom"),
        ({"unsubscribe_url": "https://evil.test/"}, "filled in by Mailroom"),
        ({"big": "x" * 20_000}, "limited to"),
    ],
)
def test_bad_merge_data_is_refused_and_changes_nothing(marketer, newsletter, draft, context, message):
    with pytest.raises(InvalidInput, match=message):
        update_campaign(actor=marketer, campaign=draft, context=context)
    assert Campaign.objects.get(pk=draft.pk).context == {}


def test_changing_merge_data_after_approval_needs_a_new_approval(marketer, approved):
    campaign = update_campaign(actor=marketer, campaign=approved, context={"promo_code": "LATE"})
    assert campaign.state == Campaign.State.DRAFT and campaign.context == {"promo_code": "LATE"}


def test_the_wizard_and_the_api_take_merge_data_and_say_what_is_wrong(client, marketer, draft):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(marketer)
    ok = api.patch(f"/api/v1/campaigns/{draft.pk}/", {"context": {"promo_code": "API"}}, format="json")
    assert ok.status_code == 200 and ok.json()["context"] == {"promo_code": "API"}
    bad = api.patch(f"/api/v1/campaigns/{draft.pk}/", {"context": {"site_name": "Evil"}}, format="json")
    assert bad.status_code == 400 and "context" in str(bad.json())
    client.force_login(marketer)
    page = client.get(f"/admin/marketing/campaign/{draft.pk}/edit/")
    assert b"promo_code" in page.content  # the wizard shows the current merge data
    overview = client.get(f"/admin/marketing/campaign/{draft.pk}/overview/")
    assert b'data-testid="merge-data"' in overview.content and b"promo_code = API" in overview.content
    assert Campaign.objects.get(pk=draft.pk).context == {"promo_code": "API"}


@pytest.mark.parametrize(("raw", "error"), [("{not json", b"Enter a valid JSON"), ('{"contact": 1}', b"filled in by Mailroom")])
def test_the_wizard_refuses_bad_merge_data_with_the_reason(client, marketer, newsletter, segment, version, raw, error):
    client.force_login(marketer)
    response = client.post("/admin/marketing/campaign/new/", wizard_form(newsletter, segment, version, name="Wizard promo", context=raw))
    assert response.status_code == 200 and error in response.content
    assert not Campaign.objects.filter(name="Wizard promo").exists()
