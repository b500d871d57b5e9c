"""A campaign's recipients table in a real browser: the marketer sorts by contact (twice, for
descending), goes to the next page, and downloads the CSV, whose formula-looking contact is
text. Screenshot: docs/screenshots/tables-recipients.png."""

import csv
import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from marketing.campaigns.actions import create_campaign
from marketing.models import CampaignRecipient
from messaging.models import Contact
from tests.marketing.conftest import SENDER, make_people, make_segment, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOT = Path(django_settings.BASE_DIR) / "docs" / "screenshots" / "tables-recipients.png"
EVIL = '=HYPERLINK("http://evil.test","x")'


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER


def test_sort_page_and_export_the_recipients(live_server, console_login, marketer, newsletter):
    # given a campaign with 60 recipients, one of them named like a formula
    guests = make_people(newsletter, 2, prefix="guest")
    campaign = create_campaign(
        actor=marketer,
        name="Big list",
        topic=newsletter,
        template_version=make_version(marketer, newsletter),
        segments=[make_segment("Guests", guests)],
    )
    people = Contact.objects.bulk_create([Contact(email=f"r{n:02d}@example.com") for n in range(59)] + [Contact(external_id=EVIL)])
    CampaignRecipient.objects.bulk_create([CampaignRecipient(campaign=campaign, contact=p, status="queued") for p in people])
    page = console_login(marketer)

    # when she opens the recipients: 50 on the first page, in the order they were recorded
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/recipients/")
    rows = page.get_by_test_id("recipient-row")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("r00@example.com")
    expect(page.get_by_test_id("table-count")).to_have_text("Page 1 of 2 (60 recipients)")

    # when she sorts by contact twice: descending, the emails from the end of the alphabet first
    page.locator('th a[data-sort="contact"]').click()
    page.wait_for_url("**sort=contact**")
    page.locator('th a[data-sort="contact"]').click()
    page.wait_for_url("**sort=-contact**")
    expect(page.locator('th[aria-sort="descending"]')).to_contain_text("Contact")
    expect(rows.first).to_contain_text("r58@example.com")

    # and goes to the next page: the sort is kept, the last ten are there
    page.get_by_test_id("table-pages").get_by_role("link", name="Next").click()
    page.wait_for_url("**page=2**")
    expect(rows).to_have_count(10)
    expect(rows.last).to_contain_text(EVIL)  # no email: sorts last descending, shown as text
    assert "sort=-contact" in page.url
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # then the CSV has every recipient, in that order, and the formula is neutralised
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    assert download.value.suggested_filename == f"campaign-{campaign.pk}-recipients.csv"
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(exported) == 60
    assert exported[0]["Contact"] == "r58@example.com" and exported[-1]["Contact"] == "'" + EVIL
