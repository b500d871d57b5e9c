"""Growth in the console, through HTTP as named staff: staff actions need a reason and the
right role, ledgers are read-only, codes are shown once, the report draws plotly charts."""

import json
import re

import pytest
from django.contrib.staticfiles import finders

from growth.giftcards import issue_gift_card
from growth.loyalty import earn_points_for_order
from growth.models import GiftCard, LoyaltyAccount, LoyaltyTransaction, Referral
from growth.referrals import get_or_create_referral_code, sign_up_with_referral
from messaging.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(contact, loyalty_program) -> LoyaltyAccount:
    earn_points_for_order(contact=contact, order_reference="A-1", amount="120")
    return LoyaltyAccount.objects.get(contact=contact)


def adjust(client, account, **data):
    return client.post(f"/admin/growth/loyaltyaccount/{account.pk}/adjust/", {"_form_submitted": "on", **data}, HTTP_HX_REQUEST="true")


def test_support_adjusts_points_with_a_reason_and_sees_it_in_the_ledger(client, support, account):
    client.force_login(support)
    response = adjust(client, account, points="30", reason="Late parcel", confirm="on")
    assert response["HX-Redirect"] == f"/admin/growth/loyaltyaccount/{account.pk}/change/"
    account.refresh_from_db()
    assert account.balance == 150
    entry = account.transactions.get(kind=LoyaltyTransaction.Kind.ADJUSTED)
    assert (entry.points, entry.reason, entry.actor) == (30, "Late parcel", support)
    assert AuditEntry.objects.filter(verb="points_adjusted", actor=support).exists()
    page = client.get(f"/admin/growth/loyaltyaccount/{account.pk}/change/").content.decode()
    assert "Late parcel" in page and "Points adjusted." in page


def test_an_adjustment_without_reason_or_confirmation_changes_nothing(client, support, account):
    client.force_login(support)
    response = adjust(client, account, points="30", reason="", confirm="on")
    assert response.status_code == 200 and b"This field is required" in response.content
    adjust(client, account, points="30", reason="typo")  # not confirmed
    assert account.transactions.count() == 1


def test_an_overdrawing_adjustment_shows_the_error_and_writes_nothing(client, support, account):
    client.force_login(support)
    adjust(client, account, points="-500", reason="cleanup", confirm="on")
    page = client.get(f"/admin/growth/loyaltyaccount/{account.pk}/change/").content.decode()
    assert "Not enough points" in page
    account.refresh_from_db()
    assert account.balance == 120 and account.transactions.count() == 1


def test_a_marketer_cannot_adjust_points(client, marketer, account):
    client.force_login(marketer)
    assert adjust(client, account, points="30", reason="why not", confirm="on").status_code == 403
    assert account.transactions.count() == 1


def test_ledgers_are_read_only_in_the_console(client, admin_user, account):
    client.force_login(admin_user)
    entry = account.transactions.get()
    assert client.get("/admin/growth/loyaltytransaction/?kind=earned").status_code == 200
    assert client.get("/admin/growth/loyaltytransaction/add/").status_code == 403
    client.post(f"/admin/growth/loyaltytransaction/{entry.pk}/change/", {"points": "9999"})
    client.post(f"/admin/growth/loyaltytransaction/{entry.pk}/delete/", {"post": "yes"})
    assert LoyaltyTransaction.objects.get().points == 120


def test_issuing_cards_shows_codes_once_and_never_again(client, marketer):
    client.force_login(marketer)
    response = client.post("/admin/growth/giftcard/issue/", {"count": "3", "amount": "25", "currency": "eur", "batch": "fair"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    codes = [item.code for item in response.context["issued"]]
    assert len(codes) == 3 and all(code in response.content.decode() for code in codes)
    assert GiftCard.objects.filter(batch="fair", currency="EUR").count() == 3
    card = GiftCard.objects.first()
    detail = client.get(f"/admin/growth/giftcard/{card.pk}/change/").content.decode()
    assert card.last4 in detail and not any(code in detail for code in codes)


def test_issue_form_refuses_bad_input(client, marketer):
    client.force_login(marketer)
    response = client.post("/admin/growth/giftcard/issue/", {"count": "1", "amount": "-3", "currency": "EUR"})
    assert response.status_code == 400
    assert not GiftCard.objects.exists()


def test_disabling_a_card_takes_a_reason_and_keeps_the_card(client, ops, marketer):
    card = issue_gift_card(actor=marketer, amount="10").card
    client.force_login(ops)
    client.post(
        f"/admin/growth/giftcard/{card.pk}/disable/",
        {"_form_submitted": "on", "reason": "Chargeback", "confirm": "on"},
        HTTP_HX_REQUEST="true",
    )
    card.refresh_from_db()
    assert card.disabled_reason == "Chargeback"
    assert client.post(f"/admin/growth/giftcard/{card.pk}/delete/", {"post": "yes"}).status_code == 403
    assert GiftCard.objects.filter(pk=card.pk).exists()


def test_rejecting_a_referral_from_the_console(client, support, referral_program, referrer):
    code = get_or_create_referral_code(contact=referrer).code
    referral = sign_up_with_referral(code=code, email="friend@example.net")
    client.force_login(support)
    client.post(
        f"/admin/growth/referral/{referral.pk}/reject/",
        {"_form_submitted": "on", "reason": "Duplicate household", "confirm": "on"},
        HTTP_HX_REQUEST="true",
    )
    referral.refresh_from_db()
    assert (referral.status, referral.note, referral.closed_by) == (Referral.Status.REJECTED, "Duplicate household", support)


def test_a_contacts_growth_summary_shows_points_referrals_and_cards(client, support, account, contact, marketer):
    issue_gift_card(actor=marketer, amount="20", recipient=contact, send_email=False)
    client.force_login(support)
    page = client.get(f"/admin/growth/customers/{contact.pk}/").content.decode()
    assert "120 points" in page and "Bronze" in page
    assert "worth €1.20" in page  # 120 points at 100 per euro, in the language's money format
    assert 'data-testid="gift-card-balance">€20.00<' in page
    lookup = client.get("/admin/growth/customers/?q=ada@").content.decode()
    assert f"/admin/growth/customers/{contact.pk}/" in lookup


def test_growth_report_builds_plotly_figures_and_serves_plotly_locally(client, admin_user, account):
    client.force_login(admin_user)
    response = client.get("/admin/growth/report/")
    assert response.status_code == 200
    charts = {chart["id"]: chart["figure"] for chart in response.context["charts"]}
    assert set(charts) == {"chart-points", "chart-referrals", "chart-liability"}
    assert sum(charts["chart-points"]["data"][0]["y"]) == 120
    page = response.content.decode()
    # no CDN host (a bare "cdn" would match a random CSRF token now and then)
    assert "/static/vendor/plotly.min.js" in page and not re.search(r"https?://[^\s\"']*cdn", page.lower())
    assert json.loads(page.split('id="chart-points" type="application/json">')[1].split("</script>")[0])["data"]
    assert finders.find("vendor/plotly.min.js")


def test_growth_pages_need_the_growth_permission(client, approver, contact):
    client.force_login(approver)
    assert client.get("/admin/growth/report/").status_code == 403
    assert client.get(f"/admin/growth/customers/{contact.pk}/").status_code == 403
