"""Issue 18, items 3 and 7 in a real browser: the campaign wizard's inputs have Unfold's
borders, its template picker is grouped by category, its send time is typed in the
marketer's time zone; a new template starts from the starter layout with a Marketing
category, says when the saved version is not active, saves and activates in one click, and
a link in its preview opens in a new tab. Screenshots: test-results/screenshots/wizard-*.png
and template-editor-*.png (copied to docs/screenshots/)."""

import re
from datetime import UTC, datetime

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from marketing.models import Campaign
from messaging.content.versions import create_template, save_template_version
from messaging.models import Template
from tests.conftest import RESULTS
from tests.marketing.conftest import BODY, SENDER, make_people, make_segment, make_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = RESULTS / "screenshots"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = SENDER
    settings.TIME_ZONE = "Europe/Paris"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def border_width(page: Page, selector: str) -> float:
    return page.locator(selector).evaluate("e => parseFloat(getComputedStyle(e).borderTopWidth)")


def test_the_wizard_has_bordered_inputs_a_grouped_picker_and_the_marketers_time_zone(console_login, live_server, marketer, newsletter):
    segment = make_segment("Readers", make_people(newsletter, 2, prefix="reader"))
    version = make_version(marketer, newsletter)  # "Spring", newsletter category
    receipt = create_template(actor=marketer, key="rcpt", name="Order receipt", category="transactional")
    save_template_version(actor=marketer, template=receipt, subject="Receipt {{ order.number }}", body_format="html", body=BODY)

    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/marketing/campaign/new/")
    # step 1: text and select inputs carry Unfold's border
    for selector in ("#id_name", "#id_channel", "#id_topic", "#id_from_address"):
        assert border_width(page, selector) > 0, selector
    page.fill("#id_name", "Spring sale")
    page.select_option("#id_topic", str(newsletter.pk))
    shot(page, "wizard-1-basics")
    page.get_by_test_id("wizard-next").click()
    page.check(f'input[name=segments][value="{segment.pk}"]')
    assert border_width(page, f'input[name=segments][value="{segment.pk}"]') > 0
    page.get_by_test_id("wizard-next").click()
    # step 3: the picker is grouped by category, named for people
    picker = page.locator("#id_template_version")
    assert border_width(page, "#id_template_version") > 0 and border_width(page, "#id_context") > 0
    groups = picker.evaluate("s => [...s.querySelectorAll('optgroup')].map(g => [g.label, [...g.children].map(o => o.text)])")
    assert groups == [["Newsletter", ["Spring · EN · v1 (active)"]], ["Transactional", ["Order receipt · EN · v1"]]]
    picker.select_option(str(version.pk))
    shot(page, "wizard-2-grouped-picker")
    page.get_by_test_id("wizard-next").click()
    # step 4: the date and time is typed in the marketer's zone, which the label names
    expect(page.locator('label[for="id_send_at"]')).to_have_text("Date and time (Europe/Paris)")
    assert border_width(page, "#id_send_at") > 0 and border_width(page, "#id_local_time") > 0
    page.get_by_label("At a date and time").check()
    page.fill("#id_send_at", "2030-03-31T10:00")
    shot(page, "wizard-3-schedule")
    page.get_by_test_id("wizard-save").click()
    expect(page.get_by_test_id("campaign-state")).to_have_attribute("data-state", "draft")
    campaign = Campaign.objects.get(name="Spring sale")
    assert campaign.send_at == datetime(2030, 3, 31, 8, 0, tzinfo=UTC)  # 10:00 summer time in Paris

    # a time the clocks skip is refused, next to the field, and the campaign keeps its time
    page.goto(f"{live_server.url}/admin/marketing/campaign/{campaign.pk}/edit/")
    page.get_by_role("button", name="4. Schedule").click()
    expect(page.locator("#id_send_at")).to_have_value("2030-03-31T10:00")
    page.fill("#id_send_at", "2030-03-31T02:30")
    page.get_by_test_id("wizard-save").click()
    expect(page.get_by_test_id("wizard-errors")).to_contain_text("2030-03-31 02:30 does not exist in Europe/Paris")
    # the wizard reopens on the step holding the refused field
    expect(page.locator("#id_send_at")).to_be_visible()
    expect(page.locator('[data-field="send_at"]')).to_contain_text("Pick another time.")
    shot(page, "wizard-4-dst-gap-refused")
    campaign.refresh_from_db()
    assert campaign.send_at == datetime(2030, 3, 31, 8, 0, tzinfo=UTC)


def test_a_new_template_starts_from_the_starter_layout_and_saves_and_activates(console_login, live_server, marketer):
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/messaging/template/add/")
    # the add form defaults to a marketing category and offers the configured languages
    expect(page.locator("select[name=category]")).to_have_value("newsletter")
    languages = page.locator("select[name=locale] option").evaluate_all("os => os.map(o => o.value)")
    assert languages == [code for code, _name in settings.LANGUAGES]
    page.fill("input[name=key]", "spring-news")
    page.fill("input[name=name]", "Spring news")
    shot(page, "template-editor-0-add")
    page.locator('button[name="_save"]').click()

    # the editor opens on the starter layout, already previewed
    template = Template.objects.get(key="spring-news")
    assert template.category == Template.Category.NEWSLETTER
    expect(page.get_by_test_id("starter-notice")).to_be_visible()
    expect(page.get_by_role("textbox", name="Body", exact=True)).to_have_value(re.compile(re.escape("{{ unsubscribe_url }}")))
    frame = page.frame_locator('[data-testid="preview-frame"]')
    expect(frame.get_by_role("link", name="Unsubscribe")).to_be_visible()
    shot(page, "template-editor-1-starter")

    # a link in the preview opens in a new tab, without a handle on the console; the editor stays
    body = page.get_by_role("textbox", name="Body", exact=True)
    body.fill(body.input_value().replace('<mj-button href="{{ site_url }}">', f'<mj-button href="{live_server.url}/admin/">'))
    expect(page.get_by_test_id("preview-frame")).to_have_attribute("srcdoc", re.compile(re.escape(f'href="{live_server.url}/admin/"')))
    # leaving the body fires its "change": that preview replaces the frame, so let it land
    # before clicking inside (a frame swapped mid-click never answers the click)
    with page.expect_response(lambda response: response.url.endswith("/editor/preview/")):
        body.blur()
    page.wait_for_load_state("networkidle")
    with page.expect_popup() as popup:
        frame.get_by_role("link", name="Call to action").click()
    popup.value.wait_for_load_state()
    assert popup.value.url == f"{live_server.url}/admin/"
    assert popup.value.evaluate("window.opener === null")
    popup.value.close()
    assert page.url.endswith(f"/admin/messaging/template/{template.pk}/editor/")

    # saving alone says the version is not active
    page.fill("#id_subject", "Spring is here, {{ contact.first_name }}")
    page.get_by_test_id("save-version").click()
    expect(page.get_by_test_id("not-active-notice")).to_have_text(
        "No version is active: nothing is sent from this template until you activate one."
    )
    shot(page, "template-editor-2-not-active")
    template.refresh_from_db()
    assert template.versions.count() == 1 and template.active_version is None

    # "Save and activate" saves the change and makes it the active version
    body.fill(body.input_value().replace("Your headline", "Spring news"))
    page.get_by_test_id("save-activate").click()
    expect(page.get_by_text("Saved as version 2. It is the active version.")).to_be_visible()
    expect(page.get_by_test_id("not-active-notice")).to_have_count(0)
    expect(page.get_by_test_id("version-row").first).to_contain_text("v2 (active)")
    shot(page, "template-editor-3-saved-and-activated")
    template.refresh_from_db()
    assert template.active_version.number == 2 and "Spring news" in template.active_version.body
