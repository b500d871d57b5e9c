"""The template editor in a real browser: live preview, syntax errors, missing variables,
versions and their diff, test sends, merge tags, preview widths and permissions."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Page, expect

from messaging.content.versions import create_template, save_template_version
from messaging.models import SandboxMessage, Template, TemplateVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "test-results" / "screenshots"

BODY = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hello {{ contact.first_name }}, welcome aboard.</mj-text>
        <mj-text>We are glad you are here.</mj-text>
        <mj-text>See you soon, </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"""
NO_RELOAD = "window.__mailroomNoReload"


@pytest.fixture(autouse=True)
def _no_cluster(settings) -> None:
    settings.MAILROOM_KICK_CLUSTER = False


@pytest.fixture
def welcome(marketer) -> Template:
    """A marketer's template with one saved version."""
    template = create_template(actor=marketer, key="welcome", name="Welcome email")
    save_template_version(actor=marketer, template=template, subject="Welcome, {{ contact.first_name }}", body=BODY, note="First draft")
    return template


def editor_url(live_server, template: Template) -> str:
    return live_server.url + reverse("admin:messaging_template_editor", args=[template.pk])


@pytest.fixture
def editor(live_server, console_login, marketer, welcome) -> Page:
    """The marketer on the editor page, with a marker that only survives if the page never reloads."""
    page = console_login(marketer)
    page.goto(editor_url(live_server, welcome))
    expect(page.get_by_test_id("preview-frame")).to_have_attribute("srcdoc", re.compile("welcome aboard"))
    page.evaluate(f"{NO_RELOAD} = 'still here'")
    return page


def body_of(page: Page):
    return page.get_by_role("textbox", name="Body", exact=True)


def select_in_body(page: Page, text: str, *, caret_after: bool = False) -> None:
    """Select `text` in the Body textarea (or put the caret right after it), as a mouse drag would."""
    body_of(page).evaluate(
        """(el, [text, caretAfter]) => {
            const start = el.value.indexOf(text);
            if (start < 0) { throw new Error("not in the body: " + text); }
            const end = start + text.length;
            el.focus();
            el.setSelectionRange(caretAfter ? end : start, end);
        }""",
        [text, caret_after],
    )


def replace_in_body(page: Page, old: str, new: str) -> None:
    select_in_body(page, old)
    if new:
        page.keyboard.type(new)
    else:
        page.keyboard.press("Delete")


def assert_not_reloaded(page: Page, url: str) -> None:
    assert page.url == url
    assert page.evaluate(NO_RELOAD) == "still here"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_typing_in_the_body_updates_the_preview_without_a_reload(editor, live_server, welcome):
    # Given the marketer on the editor of a saved template
    page, url = editor, editor_url(live_server, welcome)
    frame = page.get_by_test_id("preview-frame")
    assert "your parcel is on its way" not in frame.get_attribute("srcdoc")

    # When they rewrite a sentence in the Body
    replace_in_body(page, "welcome aboard.", "your parcel is on its way.")

    # Then the preview shows the new text, merged with the sample data, in the same page
    expect(frame).to_have_attribute("srcdoc", re.compile(r"Hello Ada, your parcel is on its way\."))
    assert "welcome aboard" not in frame.get_attribute("srcdoc")
    expect(page.get_by_test_id("preview-subject")).to_have_text("Welcome, Ada")
    expect(page.get_by_test_id("preview-error")).to_have_count(0)
    assert_not_reloaded(page, url)
    shot(page, "editor-preview.png")


@pytest.mark.parametrize("broken", ["{% if %}", "{% for x in y %}"], ids=["empty-if", "unclosed-for"])
def test_a_syntax_error_is_shown_with_its_line_and_cannot_be_saved(editor, live_server, welcome, broken):
    # Given the marketer on the editor (the sentence being replaced is on line 6 of the body)
    page, url = editor, editor_url(live_server, welcome)
    assert BODY.splitlines()[5].strip() == "<mj-text>We are glad you are here.</mj-text>"

    # When they break the template syntax on line 6
    replace_in_body(page, "We are glad you are here.", broken)

    # Then the preview is replaced by an error naming the line, without a reload
    error = page.get_by_test_id("preview-error")
    expect(error).to_contain_text("Line 6 of the body")
    expect(page.get_by_test_id("preview-frame")).to_have_count(0)
    assert_not_reloaded(page, url)
    if broken == "{% if %}":
        shot(page, "editor-error.png")

    # When they try to save it anyway
    page.get_by_test_id("save-version").click()
    page.wait_for_load_state()

    # Then the console shows the error, keeps their text, and no version was created
    expect(page.get_by_text(re.compile("Line 6 of the body")).first).to_be_visible()
    expect(page.get_by_text("Saved as version")).to_have_count(0)
    expect(body_of(page)).to_have_value(re.compile(re.escape(broken)))
    assert TemplateVersion.objects.filter(template=welcome).count() == 1
    expect(page.get_by_test_id("version-row")).to_have_count(1)


def test_after_a_refused_save_the_preview_still_shows_the_error(editor):
    # Given the marketer has broken the syntax on line 6 and the live preview shows the error
    page = editor
    replace_in_body(page, "We are glad you are here.", "{% if %}")
    expect(page.get_by_test_id("preview-error")).to_contain_text("Line 6 of the body")

    # When they save anyway and the editor comes back with their text and an error message
    page.get_by_test_id("save-version").click()
    expect(page.get_by_text(re.compile("Line 6 of the body")).first).to_be_visible()
    expect(body_of(page)).to_have_value(re.compile(re.escape("{% if %}")))

    # Then the preview pane still describes what is in the editor, not the last saved version
    expect(page.get_by_test_id("preview-error")).to_contain_text("Line 6 of the body", timeout=2_000)
    expect(page.get_by_test_id("preview-frame")).to_have_count(0, timeout=500)


def test_a_missing_variable_is_listed_in_a_warning(editor, live_server, welcome):
    # Given the marketer on the editor
    page = editor
    expect(page.get_by_test_id("preview-warning")).to_have_count(0)

    # When they use a variable the sample data does not have
    replace_in_body(page, "We are glad you are here.", "Your order {{ order.number }} is confirmed.")

    # Then the preview still renders, with a warning listing the missing variable
    warning = page.get_by_test_id("preview-warning")
    expect(warning).to_contain_text("Missing variables (rendered empty):")
    expect(warning).to_contain_text("order")
    expect(page.get_by_test_id("preview-frame")).to_have_attribute("srcdoc", re.compile(r"Your order\s+is confirmed"))
    assert_not_reloaded(page, editor_url(live_server, welcome))


def test_two_saved_versions_can_be_compared_side_by_side(editor, welcome):
    # Given the marketer on the editor of a template with one version
    page = editor
    expect(page.get_by_test_id("version-row")).to_have_count(1)

    # When they save two new versions, changing the body in between
    replace_in_body(page, "welcome aboard.", "your parcel is on its way.")
    replace_in_body(page, "We are glad you are here.", "Reply STOP to opt out of shipping texts.")
    page.get_by_placeholder("What changed? (optional)").fill("Shipping copy")
    page.get_by_test_id("save-version").click()
    expect(page.get_by_text("Saved as version 2.")).to_be_visible()
    expect(page.get_by_test_id("version-row")).to_have_count(2)

    replace_in_body(page, "is on its way.", "has been delivered.")
    replace_in_body(page, "        <mj-text>Reply STOP to opt out of shipping texts.</mj-text>\n", "")
    select_in_body(page, "<mj-text>See you soon, </mj-text>", caret_after=True)
    page.keyboard.type('\n        <mj-button href="https://example.com/review">Leave a review</mj-button>')
    page.get_by_placeholder("What changed? (optional)").fill("Delivered copy")
    page.get_by_test_id("save-version").click()
    expect(page.get_by_text("Saved as version 3.")).to_be_visible()
    expect(page.get_by_test_id("version-row")).to_have_count(3)
    assert list(welcome.versions.order_by("number").values_list("number", "note")) == [
        (1, "First draft"),
        (2, "Shipping copy"),
        (3, "Delivered copy"),
    ]

    # When they ask for the differences (v2 → v3 is preselected)
    page.get_by_test_id("compare").click()

    # Then a side-by-side diff shows the changed, removed and added lines
    diff = page.get_by_test_id("template-diff")
    expect(diff).to_be_visible()
    assert re.search(r"old=2&new=3", page.url)
    table = diff.locator("table.diff")
    expect(table).to_contain_text("Version 2")
    expect(table).to_contain_text("Version 3")
    changed = table.locator("tbody tr").filter(has=page.locator(".diff_chg"))
    expect(changed.first).to_contain_text("your parcel is on its way")
    expect(changed.first).to_contain_text("your parcel has been delivered")
    expect(table.locator(".diff_sub")).to_contain_text(["Reply STOP to opt out of shipping texts."])
    expect(table.locator(".diff_add")).to_contain_text(["Leave a review"])
    shot(page, "editor-diff.png")


def test_test_send_delivers_the_latest_version_to_the_sandbox_inbox(editor, live_server, welcome):
    # Given the marketer on the editor of a saved template
    page = editor

    # When they send the latest version to an address
    page.get_by_label("Test send to").fill("qa-inbox@example.com")
    page.get_by_test_id("test-send").click()

    # Then the editor reports it sent, without a reload
    expect(page.get_by_test_id("test-send-result")).to_contain_text("Sent to qa-inbox@example.com")
    assert_not_reloaded(page, editor_url(live_server, welcome))

    # And the sandbox caught it, merged with the sample first name
    sandboxed = SandboxMessage.objects.filter(to_address="qa-inbox@example.com")
    assert sandboxed.count() == 1
    assert sandboxed.get().subject == "Welcome, Ada"
    assert "welcome aboard" in sandboxed.get().body_html

    # When they open the sandbox inbox
    page.goto(live_server.url + reverse("admin:messaging_sandboxmessage_changelist"))

    # Then the message is listed there
    row = page.locator("#result_list tbody tr").filter(has_text="qa-inbox@example.com")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Welcome, Ada")


def test_clicking_a_merge_tag_inserts_it_at_the_cursor(editor, live_server, welcome):
    # Given the marketer with the caret after "See you soon, " in the Body
    page = editor
    frame = page.get_by_test_id("preview-frame")
    assert "See you soon, Ada" not in frame.get_attribute("srcdoc")
    select_in_body(page, "See you soon, ", caret_after=True)
    caret = BODY.index("See you soon, ") + len("See you soon, ")

    # When they open the merge-tag list and click contact.first_name
    page.get_by_text("Merge tags (click to insert)").click()
    page.locator("[data-merge-tag='contact.first_name']").click()

    # Then the tag is inserted at the caret, the caret follows it, and the preview updates
    tag = "{{ contact.first_name }}"
    expect(body_of(page)).to_have_value(BODY[:caret] + tag + BODY[caret:])
    expect(body_of(page)).to_be_focused()
    assert body_of(page).evaluate("el => el.selectionStart") == caret + len(tag)
    expect(frame).to_have_attribute("srcdoc", re.compile("See you soon, Ada"))
    assert_not_reloaded(page, editor_url(live_server, welcome))


def test_desktop_and_mobile_buttons_set_the_preview_width(editor):
    # Given the marketer on the editor on a wide screen (the preview column has room for 640px;
    # on narrower screens `max-width: 100%` caps the frame at its column), at the default width
    page = editor
    page.set_viewport_size({"width": 1920, "height": 1000})
    frame = page.get_by_test_id("preview-frame")
    expect(frame).to_have_css("width", "640px")

    # When they pick Mobile
    page.get_by_role("button", name="Mobile", exact=True).click()

    # Then the preview is 375px wide
    expect(frame).to_have_css("width", "375px")
    assert frame.bounding_box()["width"] == 375

    # And it stays so when typing swaps in a new preview
    replace_in_body(page, "welcome aboard.", "welcome to mobile.")
    expect(frame).to_have_attribute("srcdoc", re.compile("welcome to mobile"))
    expect(frame).to_have_css("width", "375px")

    # When they pick Desktop, it is 640px wide again
    page.get_by_role("button", name="Desktop", exact=True).click()
    expect(frame).to_have_css("width", "640px")
    assert frame.evaluate("el => el.style.width") == "640px"
    assert frame.bounding_box()["width"] == 640


def test_a_view_only_approver_is_refused_the_editor(live_server, console_login, approver, welcome):
    # Given an approver, who may only view templates
    page = console_login(approver)

    # When they open the editor
    response = page.goto(editor_url(live_server, welcome))

    # Then they are refused, and nothing of the editor is shown
    assert response.status == 403
    expect(page.get_by_test_id("template-editor")).to_have_count(0)
    expect(page.get_by_test_id("save-version")).to_have_count(0)
