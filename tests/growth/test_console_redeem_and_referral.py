"""Staff at the till redeem a gift card from the console with the code the customer gives,
and staff create a customer's referral code, through HTTP as named roles: the same actions
and errors as the API, the code never shown back, nothing half-written, roles enforced."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from growth.giftcards import issue_gift_card
from growth.models import GiftCard, GiftCardAttempt, GiftCardTransaction, ReferralCode
from messaging.contacts import create_contact
from messaging.models import AuditEntry
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
URL = "/admin/growth/giftcard/redeem/"
Kind = GiftCardTransaction.Kind


@pytest.fixture
def card(marketer):
    """A 50.00 EUR card; its code as the customer would read it out."""
    issued = issue_gift_card(actor=marketer, amount="50", currency="EUR")
    return issued.card, issued.code


def redeem(client, code, amount="12.50", currency="EUR", submission="s-1", **extra):
    data = {"code": code, "amount": amount, "currency": currency, "order_reference": "TILL-7", "submission": submission, **extra}
    return client.post(URL, data)


def ledger(card) -> list[tuple[str, Decimal]]:
    return list(card.transactions.order_by("pk").values_list("kind", "amount"))


def unchanged(card) -> bool:
    card.refresh_from_db()
    return card.balance == Decimal("50.00") and ledger(card) == [(Kind.PURCHASE, Decimal("50.00"))]


# --- redeeming at the till ------------------------------------------------------------------------


def test_support_redeems_part_of_a_card_and_lands_on_its_ledger(client, support, card):
    card, code = card
    client.force_login(support)
    form = client.get(URL)
    assert form.status_code == 200 and "no-store" in form["Cache-Control"]
    assert form.context["form"]["currency"].value() == "EUR"
    response = redeem(client, code.lower().replace("-", " "))  # as typed: case and separators do not matter
    assert response.status_code == 302 and response["Location"] == f"/admin/growth/giftcard/{card.pk}/change/"
    card.refresh_from_db()
    assert card.balance == Decimal("37.50")
    entry = card.transactions.get(kind=Kind.REDEMPTION)
    assert (entry.amount, entry.balance_after, entry.order_reference, entry.actor) == (
        Decimal("-12.50"),
        Decimal("37.50"),
        "TILL-7",
        support,
    )
    assert AuditEntry.objects.filter(verb="gift_card_redeemed", actor=support).count() == 1
    page = client.get(response["Location"]).content.decode()
    assert f"Redeemed €12.50 from gift card •••• {card.last4}; €37.50 left." in page
    assert code not in page and code.replace("-", "") not in page
    assert "€37.50" in client.get("/admin/growth/giftcard/").content.decode()  # the list shows money too


def test_the_same_form_submitted_twice_redeems_once(client, ops, card):
    card, code = card
    client.force_login(ops)
    first, again = redeem(client, code, submission="dup"), redeem(client, code, submission="dup")
    assert first.status_code == again.status_code == 302
    card.refresh_from_db()
    assert card.balance == Decimal("37.50") and card.transactions.filter(kind=Kind.REDEMPTION).count() == 1


@pytest.mark.parametrize(
    ("change", "amount", "currency", "said"),
    [
        ("none", "80", "EUR", "Only €50.00 left on this gift card; €80.00 was asked for."),
        ("expired", "5", "EUR", "This gift card expired on"),
        ("none", "5", "USD", "This gift card is in EUR, not USD."),
        ("disabled", "5", "EUR", "This gift card is disabled."),
    ],
)
def test_a_refused_redemption_says_why_never_shows_the_code_and_writes_nothing(client, support, card, change, amount, currency, said):
    card, code = card
    if change == "expired":
        GiftCard.objects.filter(pk=card.pk).update(expires_at=timezone.now() - timedelta(days=1))
    if change == "disabled":
        GiftCard.objects.filter(pk=card.pk).update(disabled_at=timezone.now(), disabled_reason="lost")
    client.force_login(support)
    response = redeem(client, code, amount=amount, currency=currency)
    page = response.content.decode()
    assert response.status_code == 400 and said in page and 'data-testid="redeem-error"' in page
    assert code not in page and code.replace("-", "") not in page  # the code field comes back empty
    assert 'name="code"' in page and 'value="' + code not in page
    assert f'value="{amount}"' in page  # the rest of the form is kept
    assert unchanged(card)
    assert not AuditEntry.objects.filter(verb="gift_card_redeemed").exists()
    assert GiftCardAttempt.objects.get().succeeded is False  # counted towards the card's lock


@pytest.mark.parametrize(
    ("amount", "field_error"),
    [("abc", "Enter a number."), ("0", "greater than or equal to 0.01"), ("-5", "greater than or equal to 0.01"), ("1.234", "2 decimal")],
)
def test_a_bad_amount_is_a_field_error_and_no_attempt(client, support, card, amount, field_error):
    card, code = card
    client.force_login(support)
    response = redeem(client, code, amount=amount)
    assert response.status_code == 400 and field_error in response.content.decode()
    assert unchanged(card) and not GiftCardAttempt.objects.exists()


def test_a_french_till_types_a_decimal_comma(client, support, card):
    card, code = card
    client.force_login(support)
    response = client.post(URL, {"code": code, "amount": "12,50", "currency": "eur", "submission": "fr"}, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.balance == Decimal("37.50")


def test_wrong_codes_lock_the_person_out_even_for_a_right_code(client, support, card, settings):
    card, code = card
    client.force_login(support)
    for n in range(settings.MAILROOM_GIFT_CARD_MAX_BAD_CODES):
        response = redeem(client, f"AAAA-BBBB-CCCC-{n:04d}", submission=f"guess-{n}")
        assert response.status_code == 400 and "This gift-card code is not valid." in response.content.decode()
    response = redeem(client, code, submission="right")
    assert response.status_code == 400 and "Too many invalid gift-card codes. Try again in 15 minutes." in response.content.decode()
    assert unchanged(card)
    # the lock is this person's, not the whole shop's
    other = Client()
    other.force_login(create_staff("till2", "Support"))
    assert redeem(other, code, submission="colleague").status_code == 302


def create_staff(username, role):
    return make_user(username, role)


@pytest.mark.parametrize("role", ["marketer", "approver"])
def test_roles_without_redeem_permission_cannot_redeem(client, request, card, role):
    card, code = card
    client.force_login(request.getfixturevalue(role))
    assert client.get(URL).status_code == 403
    assert redeem(client, code).status_code == 403
    assert unchanged(card) and not GiftCardAttempt.objects.exists()
    if role == "marketer":  # the list shows them no redeem button either
        assert URL not in client.get("/admin/growth/giftcard/").content.decode()


def test_redeeming_needs_the_csrf_token(support, card):
    card, code = card
    client = Client(enforce_csrf_checks=True)
    client.force_login(support)
    assert redeem(client, code).status_code == 403
    assert unchanged(card)


# --- referral codes from the customer page ------------------------------------------------------------


@pytest.fixture
def customer(db):
    return create_contact(actor=None, email="grace@example.com", first_name="Grace")


def summary(customer) -> str:
    return f"/admin/growth/customers/{customer.pk}/"


@pytest.mark.parametrize("role", ["marketer", "support"])
def test_staff_who_hand_out_codes_create_a_customers_code_once_and_it_is_audited(client, request, referral_program, customer, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    assert 'data-testid="create-referral-code"' in client.get(summary(customer)).content.decode()
    response = client.post(summary(customer))
    assert response.status_code == 302 and response["Location"] == summary(customer)
    code = ReferralCode.objects.get(contact=customer)
    assert code.program == referral_program
    audit = AuditEntry.objects.get(verb="referral_code_created")
    assert audit.actor == user
    page = client.get(summary(customer)).content.decode()
    assert f"Referral code {code.code} created for" in page and f'data-testid="referral-code">{code.code}<' in page
    assert 'data-testid="create-referral-code"' not in page  # one code per customer: the button is gone
    # asked again (a second tab): the same code, nothing new written
    client.post(summary(customer))
    assert ReferralCode.objects.filter(contact=customer).count() == 1
    assert AuditEntry.objects.filter(verb="referral_code_created").count() == 1
    assert "already has the referral code" in client.get(summary(customer)).content.decode()


@pytest.mark.parametrize(("role", "status"), [("ops", 403), ("approver", 403)])
def test_other_roles_cannot_create_codes(client, request, referral_program, customer, role, status):
    client.force_login(request.getfixturevalue(role))
    page = client.get(summary(customer))
    assert page.status_code == 403 or 'data-testid="create-referral-code"' not in page.content.decode()
    assert client.post(summary(customer)).status_code == status
    assert not ReferralCode.objects.exists() and not AuditEntry.objects.filter(verb="referral_code_created").exists()


def test_without_a_running_program_the_page_says_so_and_writes_nothing(client, marketer, customer):
    client.force_login(marketer)
    response = client.post(summary(customer), follow=True)
    assert "There is no referral program running." in response.content.decode()
    assert not ReferralCode.objects.exists() and not AuditEntry.objects.filter(verb="referral_code_created").exists()


def test_a_deleted_customer_gets_no_code(client, marketer, referral_program, customer):
    type(customer).objects.filter(pk=customer.pk).update(deleted_at=timezone.now())
    client.force_login(marketer)
    response = client.post(summary(customer), follow=True)
    assert "A deleted contact cannot refer friends." in response.content.decode()
    assert not ReferralCode.objects.exists()


def test_the_api_creates_codes_through_the_same_audited_action(api, marketer, referral_program, customer):
    api.force_authenticate(marketer)
    first = api.post(f"/api/v1/contacts/{customer.pk}/referral/")
    again = api.post(f"/api/v1/contacts/{customer.pk}/referral/")
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["code"] == again.json()["code"]
    assert AuditEntry.objects.filter(verb="referral_code_created", actor=marketer).count() == 1
