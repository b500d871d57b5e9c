"""A marketer builds a segment in the browser and watches the live count follow the rules."""

from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from marketing.models import Segment
from messaging.contacts import create_contact

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-results" / "screenshots"


@pytest.fixture
def audience(db):
    stages = ["customer"] * 6 + ["lead"] * 4
    for i, stage in enumerate(stages):
        create_contact(
            actor=None,
            email=f"person{i}@example.com",
            first_name=f"P{i}",
            attributes={"lifecycle_stage": stage, "tags": ["vip"] if i % 3 == 0 else []},
        )


def settle(page: Page) -> None:
    """Wait until no htmx request is in flight (a structural edit re-renders the tree)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def pick_attribute_field(page: Page, index: int) -> None:
    """Pick "attribute" as rule `index`'s field; the tree re-renders with its key input."""
    page.get_by_test_id("rule").nth(index).get_by_test_id("rule-field").select_option("attribute")
    settle(page)
    expect(page.get_by_test_id("rule").nth(index).get_by_test_id("rule-key")).to_be_visible()


def count(page: Page):
    return page.get_by_test_id("live-count")


def test_build_a_segment_and_watch_the_count(marketer, audience, console_login, live_server):
    page = console_login(marketer)
    # given the builder for a new segment: no rules, every contact matches
    page.goto(f"{live_server.url}/admin/marketing/segment/builder/")
    expect(count(page)).to_have_text("10")

    # when the marketer adds a rule "attribute lifecycle_stage is customer"
    page.get_by_test_id("add-rule").first.click()
    expect(page.get_by_test_id("rule")).to_have_count(1)  # the re-rendered tree is in place
    settle(page)
    pick_attribute_field(page, 0)
    rule = page.get_by_test_id("rule").first
    rule.get_by_test_id("rule-key").fill("lifecycle_stage")
    rule.get_by_test_id("rule-operator").select_option("equals")
    settle(page)
    page.get_by_test_id("rule").first.get_by_test_id("rule-value").fill("customer")
    # then the count follows as they type
    expect(count(page)).to_have_text("6")

    # when they add an OR group for tags includes vip
    page.get_by_test_id("add-rule").first.click()
    expect(page.get_by_test_id("rule")).to_have_count(2)  # never pick a field in the old tree
    settle(page)
    pick_attribute_field(page, 1)
    second = page.get_by_test_id("rule").nth(1)
    second.get_by_test_id("rule-key").fill("tags")
    second.get_by_test_id("rule-operator").select_option("includes")
    settle(page)
    page.get_by_test_id("rule").nth(1).get_by_test_id("rule-value").fill("vip")
    expect(count(page)).to_have_text("2")  # customers (0..5) with vip: 0 and 3

    # a bad value is named, not crashed on
    page.get_by_test_id("rule").nth(1).get_by_test_id("rule-operator").select_option("gt")
    settle(page)
    page.get_by_test_id("rule").nth(1).get_by_test_id("rule-value").fill("many")
    expect(page.get_by_test_id("preview-error")).to_contain_text("Rule 2: “many” is not a number.")
    page.get_by_test_id("rule").nth(1).get_by_test_id("remove-rule").click()
    settle(page)
    expect(count(page)).to_have_text("6")

    # when they name it and save with a refresh
    page.get_by_test_id("segment-name").fill("Customers")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "segment-builder.png"), full_page=True)
    page.get_by_test_id("save-and-refresh").click()
    # then the segment is stored with its members materialised and the time shown
    expect(page.get_by_test_id("last-refresh")).to_contain_text("6 members materialised")
    segment = Segment.objects.get(name="Customers")
    assert segment.member_count == 6
    assert segment.rules["rules"][0] == {
        "type": "rule",
        "field": "attribute",
        "operator": "equals",
        "value": "customer",
        "key": "lifecycle_stage",
    }


PICK_AS_THE_TREE_LANDS = """() => new Promise(resolve => {
    document.body.addEventListener("htmx:afterSwap", () => setTimeout(() => {
        const field = document.querySelector("[data-testid=rule] [data-testid=rule-field]");
        field.value = "attribute";
        field.dispatchEvent(new Event("change", {bubbles: true}));
        resolve();
    }, 0), {once: true});
    document.querySelector("[data-testid=add-rule]").click();
})"""


def test_a_field_picked_the_moment_the_new_tree_lands_is_kept(marketer, audience, console_login, live_server):
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/marketing/segment/builder/")
    expect(count(page)).to_have_text("10")
    # when a rule is added and its field picked as soon as the new tree is in the page
    page.evaluate(PICK_AS_THE_TREE_LANDS)
    # then the tree re-renders for that field (it used to stay inert until htmx settled it)
    expect(page.get_by_test_id("rule").first.get_by_test_id("rule-key")).to_be_visible()
