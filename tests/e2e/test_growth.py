"""Growth in a real browser: staff adjust a loyalty balance with a reason and see the
ledger; a marketer issues a gift card and sees its code once; a friend signs up through a
referral link. Screenshots are kept under
test-results/screenshots/growth-*.png."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from growth.giftcards import hash_code
from growth.loyalty import earn_points_for_order
from growth.models import GiftCard, LoyaltyAccount, LoyaltyProgram, LoyaltyTier, Referral, ReferralProgram
from growth.referrals import get_or_create_referral_code
from messaging.contacts import create_contact
from messaging.models import AuditEntry
from tests.conftest import RESULTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = RESULTS / "screenshots"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"growth-{name}.png"), full_page=True)


def test_support_adjusts_a_loyalty_balance_with_a_reason_and_sees_the_ledger(live_server, console_login, support):
    program = LoyaltyProgram.objects.create(name="Rewards", points_per_unit=Decimal("1"), redemption_rate=100)
    LoyaltyTier.objects.create(program=program, name="Bronze", threshold=0)
    customer = create_contact(actor=None, email="ada@example.com", first_name="Ada")
    earn_points_for_order(contact=customer, order_reference="A-1001", amount="120")
    account = LoyaltyAccount.objects.get(contact=customer)

    page = console_login(support)
    page.goto(f"{live_server.url}/admin/growth/loyaltyaccount/{account.pk}/change/")
    page.get_by_role("link", name="Adjust points").click()
    dialog = page.locator("#dialog")
    expect(dialog).to_be_visible()
    dialog.locator("input[name=points]").fill("35")
    dialog.locator("input[name=reason]").fill("Goodwill: parcel arrived late")
    dialog.locator("input[name=confirm]").check()
    shot(page, "adjust-dialog")
    dialog.get_by_role("button", name="Adjust").click()

    page.wait_for_url(f"{live_server.url}/admin/growth/loyaltyaccount/{account.pk}/change/")
    expect(page.get_by_text("Points adjusted.")).to_be_visible()
    expect(page.get_by_text("Goodwill: parcel arrived late")).to_be_visible()
    shot(page, "account-ledger")
    account.refresh_from_db()
    assert account.balance == 155
    assert AuditEntry.objects.filter(verb="points_adjusted", actor=support).count() == 1

    # the customer's growth summary and the filterable ledger show the same entry
    page.goto(f"{live_server.url}/admin/growth/customers/{customer.pk}/")
    expect(page.get_by_test_id("points-balance")).to_have_text("155 points")
    expect(page.get_by_test_id("ledger")).to_contain_text("Goodwill: parcel arrived late")
    shot(page, "customer-summary")
    page.goto(f"{live_server.url}/admin/growth/loyaltytransaction/?kind=adjusted")
    expect(page.locator("#result_list")).to_contain_text("Goodwill: parcel arrived late")
    expect(page.locator("#result_list")).not_to_contain_text("A-1001")


def test_the_growth_report_draws_its_charts(live_server, console_login, admin_user):
    program = LoyaltyProgram.objects.create(name="Rewards")
    customer = create_contact(actor=None, email="ada@example.com")
    earn_points_for_order(contact=customer, order_reference="A-1", amount="80")
    assert program.accounts.count() == 1
    page = console_login(admin_user)
    page.goto(f"{live_server.url}/admin/growth/report/")
    expect(page.get_by_test_id("chart-points")).to_have_attribute("data-drawn", "yes")
    expect(page.get_by_test_id("chart-points").locator(".main-svg").first).to_be_visible()
    # no referral and no gift card yet: an empty state, not bare −1..1 axes
    for chart in ("chart-referrals", "chart-liability"):
        expect(page.get_by_test_id(chart)).to_have_attribute("data-empty", "yes")
        expect(page.get_by_test_id(chart)).to_contain_text("No data for this period.")
    shot(page, "report")


def test_a_friend_signs_up_through_a_referral_link(live_server, page: Page):
    ReferralProgram.objects.create(name="Invite a friend")
    grace = create_contact(actor=None, email="grace@example.com", first_name="Grace")
    code = get_or_create_referral_code(contact=grace).code

    page.goto(f"{live_server.url}/r/{code}/")
    expect(page.get_by_role("heading", name="Grace invites you")).to_be_visible()
    shot(page, "referral-landing")
    # her own address is refused with a clear message
    page.fill("#id_email", "grace@example.com")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("referral-error")).to_have_text("You cannot use your own referral code.")
    page.fill("#id_email", "linus@example.org")
    page.fill("#id_first_name", "Linus")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("referral-welcome")).to_be_visible()
    shot(page, "referral-welcome")

    referral = Referral.objects.get()
    assert (referral.referrer, referral.friend.email, referral.status) == (grace, "linus@example.org", Referral.Status.PENDING)
    assert referral.signup_ip == "127.0.0.1" and len(referral.device_id) >= 16


def test_a_marketer_issues_a_gift_card_and_sees_its_code_only_once(live_server, console_login, marketer):
    # given a marketer in the gift cards list
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/growth/giftcard/")
    page.get_by_role("link", name="Issue gift cards").click()
    # when they issue one 25.00 EUR card
    page.fill("input[name=amount]", "25")
    page.get_by_role("button", name="Issue", exact=True).click()
    # then the code is shown, with a warning that it will not be shown again
    codes = page.get_by_test_id("issued-codes")
    expect(codes).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("shown only once")
    code = codes.locator("td.font-mono").inner_text().strip()
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}", code), code
    shot(page, "giftcard-issued")
    card = GiftCard.objects.get()
    assert (card.code_hash, card.last4, card.balance, card.issued_by) == (hash_code(code), code[-4:], Decimal("25.00"), marketer)

    # reloading the page (the browser posts the form again) issues no second card and masks the code
    page.reload()
    expect(page.get_by_test_id("codes-already-shown")).to_be_visible()
    expect(page.get_by_test_id("issued-codes")).to_contain_text(f"•••• {card.last4}")
    expect(page.locator("body")).not_to_contain_text(code)
    assert GiftCard.objects.count() == 1
    shot(page, "giftcard-reloaded")
    # and the list and the card's page show only the last 4
    page.goto(f"{live_server.url}/admin/growth/giftcard/")
    expect(page.locator("#result_list")).to_contain_text(f"•••• {card.last4}")
    expect(page.locator("body")).not_to_contain_text(code)
    expect(page.locator("body")).not_to_contain_text(code.replace("-", ""))
    page.goto(f"{live_server.url}/admin/growth/giftcard/{card.pk}/change/")
    expect(page.locator("body")).to_contain_text(card.last4)
    expect(page.locator("body")).not_to_contain_text(code.replace("-", "")[:12])
    shot(page, "giftcard-masked")
