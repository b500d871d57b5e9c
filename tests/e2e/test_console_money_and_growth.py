"""In a real browser: an empty analytics period shows empty states, choosing a From date
switches the period to Custom (and a preset clears the dates), money and rates in French;
staff redeem a gift card at the till and create a customer's referral code. Screenshots:
docs/screenshots/analytics-empty.png, analytics-money-fr.png, giftcard-redeem.png,
referral-code.png."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from growth.giftcards import issue_gift_card
from growth.models import GiftCard, ReferralCode, ReferralProgram
from messaging.contacts import create_contact
from messaging.models import AuditEntry
from tests.e2e.test_analytics import activity  # noqa: F401  (fixture: a few days of email, SMS and one order)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "docs" / "screenshots"
CHARTS = ("chart-timeseries", "chart-funnel", "chart-channels", "chart-heatmap")
NBSP = "\xa0"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_empty_period_shows_empty_states_and_a_from_date_makes_it_custom(live_server, console_login, marketer):
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/analytics/")
    for chart in CHARTS:
        expect(page.get_by_test_id(chart)).to_have_attribute("data-empty", "yes")
        expect(page.get_by_test_id(chart)).to_contain_text("No data for this period.")
    assert page.locator("svg.main-svg").count() == 0  # no bare −1..1 axes anywhere
    shot(page, "analytics-empty")

    today = timezone.localdate()
    page.evaluate("() => { window.__sameDocument = true; }")
    page.fill("#id_since", (today - timedelta(days=2)).isoformat())
    expect(page.locator("#id_range")).to_have_value("custom")
    expect(page.get_by_test_id("analytics-results")).to_have_attribute("data-since", (today - timedelta(days=2)).isoformat())
    expect(page.get_by_test_id("analytics-results")).to_have_attribute("data-until", today.isoformat())
    assert "range=custom" in page.url

    # a preset period again: the dates are cleared so they do not override it
    page.select_option("#id_range", "7")
    expect(page.locator("#id_since")).to_have_value("")
    expect(page.get_by_test_id("analytics-results")).to_have_attribute("data-since", (today - timedelta(days=6)).isoformat())
    assert page.evaluate("() => window.__sameDocument") is True


def test_money_and_rates_in_french(live_server, console_login, marketer, activity):  # noqa: F811
    page = console_login(marketer)
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": "fr", "url": live_server.url}])
    page.goto(f"{live_server.url}/admin/analytics/")
    expect(page.get_by_test_id("kpi-revenue")).to_have_text(f"49,90{NBSP}€")
    expect(page.get_by_test_id("analytics-kpis")).to_contain_text("44,4 %")  # 4 opens of 9 delivered
    expect(page.get_by_test_id("chart-funnel")).to_have_attribute("data-drawn", "yes")
    separators = page.evaluate("() => document.querySelector('[data-testid=chart-funnel]').layout.separators")
    assert separators == f",{NBSP}"
    page.get_by_test_id("chart-funnel").scroll_into_view_if_needed()
    shot(page, "analytics-money-fr")


def test_support_redeems_a_gift_card_at_the_till(live_server, console_login, support, marketer):
    issued = issue_gift_card(actor=marketer, amount="50", currency="EUR")
    page = console_login(support)
    page.goto(f"{live_server.url}/admin/growth/giftcard/")
    page.get_by_role("link", name="Redeem a gift card").click()
    form = page.get_by_test_id("gift-card-redeem")
    # too much: a clear error, the code field comes back empty, the rest is kept
    form.locator("input[name=code]").fill(issued.code)
    form.locator("input[name=amount]").fill("80")
    form.locator("input[name=order_reference]").fill("TILL-7")
    form.get_by_role("button", name="Redeem").click()
    expect(page.get_by_test_id("redeem-error")).to_have_text("Only €50.00 left on this gift card; €80.00 was asked for.")
    expect(page.locator("input[name=code]")).to_have_value("")
    assert issued.code not in page.content()
    # the right amount
    page.locator("input[name=code]").fill(issued.code)
    page.locator("input[name=amount]").fill("12.50")
    page.get_by_role("button", name="Redeem").click()
    page.wait_for_url(f"{live_server.url}/admin/growth/giftcard/{issued.card.pk}/change/")
    expect(page.get_by_text(f"Redeemed €12.50 from gift card •••• {issued.card.last4}; €37.50 left.")).to_be_visible()
    expect(page.get_by_text("TILL-7")).to_be_visible()
    assert issued.code not in page.content()
    shot(page, "giftcard-redeem")
    card = GiftCard.objects.get()
    assert card.balance == Decimal("37.50") and card.transactions.count() == 2
    assert AuditEntry.objects.filter(verb="gift_card_redeemed", actor=support).count() == 1


def test_a_marketer_creates_a_customers_referral_code(live_server, console_login, marketer):
    ReferralProgram.objects.create(name="Invite a friend")
    grace = create_contact(actor=None, email="grace@example.com", first_name="Grace")
    page = console_login(marketer)
    page.goto(f"{live_server.url}/admin/growth/customers/{grace.pk}/")
    expect(page.get_by_test_id("referral-code")).to_have_text("-")
    page.get_by_role("button", name="Create referral code").click()
    page.wait_for_url(f"{live_server.url}/admin/growth/customers/{grace.pk}/")
    code = ReferralCode.objects.get(contact=grace).code
    expect(page.get_by_test_id("referral-code")).to_have_text(code)
    expect(page.get_by_text(f"Referral code {code} created for")).to_be_visible()
    expect(page.get_by_role("button", name="Create referral code")).to_have_count(0)
    shot(page, "referral-code")
    assert AuditEntry.objects.filter(verb="referral_code_created", actor=marketer).count() == 1
