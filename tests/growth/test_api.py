"""Growth's API resources: referrals, loyalty (summary, ledger, redeem), gift cards (list,
redeem by code with an idempotency key, refund). Each: happy path, a refused role (403),
no credentials (401), bad input (400)."""

from decimal import Decimal

import pytest

from growth.giftcards import issue_gift_card
from growth.loyalty import earn_points_for_order
from growth.models import GiftCard, LoyaltyAccount, Referral
from messaging.models import Contact
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


# --- referrals ---------------------------------------------------------------------------------
def test_referral_code_is_created_once_and_stats_follow(as_user, marketer, referral_program, referrer):
    client = as_user(marketer)
    url = f"/api/v1/contacts/{referrer.pk}/referral/"
    assert client.get(url).json()["code"] is None
    created = client.post(url)
    assert created.status_code == 201
    code = created.json()["code"]
    assert code and created.json()["url"].endswith(f"{code}/")
    again = client.post(url)
    assert again.status_code == 200 and again.json()["code"] == code
    body = client.get(url).json()
    assert body["code"] == code and body["total"] == 0 and set(body["referrals"]) >= {"pending"}


def test_referral_refusals(api, as_user, approver, ops, support, referral_program, referrer):
    url = f"/api/v1/contacts/{referrer.pk}/referral/"
    assert_problem(as_user(approver).get(url), 403)
    assert_problem(as_user(ops).post(url), 403)
    assert_problem(api.get(url), 401)
    assert_problem(api.post(url), 401)
    assert_problem(as_user(support).get("/api/v1/contacts/999999/referral/"), 404)


def test_referral_code_without_a_program_is_a_conflict(as_user, marketer, referrer):
    assert_problem(as_user(marketer).post(f"/api/v1/contacts/{referrer.pk}/referral/"), 409, "referral_program_closed")


# --- loyalty ----------------------------------------------------------------------------------
@pytest.fixture
def member(loyalty_program, referrer):
    earn_points_for_order(contact=referrer, order_reference="o-1", amount=Decimal("120"))
    return referrer


def test_loyalty_summary_and_ledger(as_user, marketer, member):
    client = as_user(marketer)
    summary = client.get(f"/api/v1/contacts/{member.pk}/loyalty/").json()
    assert summary["balance"] == 120 and summary["tier"] == "Bronze" and summary["next_tier"] == {"name": "Gold", "points_needed": 880}
    ledger = client.get(f"/api/v1/contacts/{member.pk}/loyalty/transactions/").json()
    assert ledger["count"] == 1 and ledger["results"][0]["kind"] == "earned" and ledger["results"][0]["points"] == 120


def test_redeem_points_is_idempotent_by_key(as_user, support, member):
    client = as_user(support)
    url = f"/api/v1/contacts/{member.pk}/loyalty/redeem/"
    first = client.post(url, {"points": 50, "idempotency_key": "r-1"}, format="json")
    assert first.status_code == 201 and first.json()["points"] == -50 and first.json()["balance_after"] == 70
    replay = client.post(url, {"points": 50, "idempotency_key": "r-1"}, format="json")
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert LoyaltyAccount.objects.get(contact=member).balance == 70
    assert_problem(client.post(url, {"points": 500, "idempotency_key": "r-2"}, format="json"), 409, "insufficient_balance")
    assert_problem(client.post(url, {"points": 10, "idempotency_key": "r-1"}, format="json"), 409, "idempotency_conflict")


def test_loyalty_refusals_and_bad_input(api, as_user, marketer, approver, support, member):
    summary, redeem = f"/api/v1/contacts/{member.pk}/loyalty/", f"/api/v1/contacts/{member.pk}/loyalty/redeem/"
    assert_problem(as_user(approver).get(summary), 403)
    assert_problem(as_user(marketer).post(redeem, {"points": 5, "idempotency_key": "k"}, format="json"), 403)
    assert_problem(api.get(summary), 401)
    assert_problem(api.post(redeem, {}, format="json"), 401)
    body = assert_problem(as_user(support).post(redeem, {"points": 0}, format="json"), 400)
    assert set(body["fields"]) == {"points", "idempotency_key"}
    assert LoyaltyAccount.objects.get(contact=member).balance == 120


def test_loyalty_without_an_account_is_a_404(as_user, marketer, loyalty_program, contact):
    assert_problem(as_user(marketer).get(f"/api/v1/contacts/{contact.pk}/loyalty/"), 404, "no_loyalty_program")


# --- gift cards -------------------------------------------------------------------------------
@pytest.fixture
def card(admin_user, referrer):
    return issue_gift_card(actor=admin_user, amount=Decimal("50"), recipient=referrer, send_email=False)


def test_gift_cards_of_a_contact(as_user, marketer, card, referrer):
    body = as_user(marketer).get(f"/api/v1/contacts/{referrer.pk}/gift-cards/").json()
    assert [(c["id"], c["last4"], c["balance"]) for c in body["results"]] == [(card.card.pk, card.code[-4:], "50.00")]
    assert "code" not in body["results"][0] and "code_hash" not in body["results"][0]


def test_redeem_gift_card_with_an_idempotency_key_then_refund(as_user, support, card):
    client = as_user(support)
    payload = {"code": card.code, "amount": "20.00", "idempotency_key": "order-7-gc", "order_reference": "order-7"}
    first = client.post("/api/v1/gift-cards/redeem/", payload, format="json")
    assert first.status_code == 201 and first.json()["amount"] == "-20.00" and first.json()["balance_after"] == "30.00"
    replay = client.post("/api/v1/gift-cards/redeem/", payload, format="json")
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert GiftCard.objects.get(pk=card.card.pk).balance == Decimal("30.00")
    refund = client.post(
        f"/api/v1/gift-cards/{card.card.pk}/refund/", {"amount": "5.00", "idempotency_key": "order-7-refund"}, format="json"
    )
    assert refund.status_code == 201 and refund.json()["balance_after"] == "35.00"
    too_much = client.post(f"/api/v1/gift-cards/{card.card.pk}/refund/", {"amount": "50.00", "idempotency_key": "x"}, format="json")
    assert "amount" in assert_problem(too_much, 400, "invalid_amount")["fields"]
    overdraw = client.post("/api/v1/gift-cards/redeem/", {**payload, "amount": "99.00", "idempotency_key": "k2"}, format="json")
    assert_problem(overdraw, 409, "insufficient_balance")
    assert GiftCard.objects.get(pk=card.card.pk).balance == Decimal("35.00")


def test_gift_card_refusals_and_bad_input(api, as_user, marketer, approver, support, card, referrer):
    payload = {"code": card.code, "amount": "1.00", "idempotency_key": "k"}
    assert_problem(as_user(approver).get(f"/api/v1/contacts/{referrer.pk}/gift-cards/"), 403)
    assert_problem(as_user(marketer).post("/api/v1/gift-cards/redeem/", payload, format="json"), 403)
    assert_problem(as_user(marketer).post(f"/api/v1/gift-cards/{card.card.pk}/refund/", payload, format="json"), 403)
    assert_problem(api.post("/api/v1/gift-cards/redeem/", payload, format="json"), 401)
    assert_problem(api.get(f"/api/v1/contacts/{referrer.pk}/gift-cards/"), 401)
    body = assert_problem(as_user(support).post("/api/v1/gift-cards/redeem/", {"code": card.code, "amount": "-3"}, format="json"), 400)
    assert set(body["fields"]) == {"amount", "idempotency_key"}
    assert_problem(
        as_user(support).post("/api/v1/gift-cards/redeem/", {**payload, "code": "NOPE-NOPE"}, format="json"), 404, "unknown_gift_card"
    )
    assert GiftCard.objects.get(pk=card.card.pk).balance == Decimal("50.00")


@pytest.mark.parametrize("path", ["redeem", "refund"])
def test_a_wrong_currency_is_a_clear_400_and_leaves_the_ledger_unchanged(as_user, support, card, path):
    # given a 50.00 EUR card with 10.00 spent
    client = as_user(support)
    spent = client.post("/api/v1/gift-cards/redeem/", {"code": card.code, "amount": "10.00", "idempotency_key": "o-1"}, format="json")
    assert spent.status_code == 201
    url = "/api/v1/gift-cards/redeem/" if path == "redeem" else f"/api/v1/gift-cards/{card.card.pk}/refund/"
    payload = {"code": card.code, "amount": "5.00", "idempotency_key": "o-2"}
    # when the same amount is asked for in US dollars
    response = client.post(url, {**payload, "currency": "usd"}, format="json")
    # then it is refused with the card's currency in the message, and nothing moved
    body = assert_problem(response, 400, "currency_mismatch")
    assert "EUR" in body["detail"] and "USD" in body["detail"]
    gift_card = GiftCard.objects.get(pk=card.card.pk)
    assert gift_card.balance == Decimal("40.00")
    assert list(gift_card.transactions.values_list("kind", flat=True).order_by("pk")) == ["purchase", "redemption"]
    # a currency that is not three letters is a field error
    assert "currency" in assert_problem(client.post(url, {**payload, "currency": "EURO"}, format="json"), 400)["fields"]
    # and the right currency (any case) goes through
    assert client.post(url, {**payload, "currency": "eur"}, format="json").status_code == 201


def test_many_wrong_codes_through_the_api_end_in_429_even_for_the_right_code(as_user, support, card, settings):
    # given the default lockout of 5 bad codes per IP
    settings.MAILROOM_GIFT_CARD_MAX_BAD_CODES = 5
    client = as_user(support)
    # when 5 wrong codes are tried
    for n in range(5):
        wrong = {"code": f"ABCD-EFGH-JKLM-NP{n:02d}", "amount": "1.00", "idempotency_key": f"guess-{n}"}
        assert_problem(client.post("/api/v1/gift-cards/redeem/", wrong, format="json"), 404, "unknown_gift_card")
    # then the 6th attempt is a 429, even with the right code, and the card is untouched
    right = {"code": card.code, "amount": "1.00", "idempotency_key": "real"}
    assert_problem(client.post("/api/v1/gift-cards/redeem/", right, format="json"), 429, "too_many_attempts")
    assert GiftCard.objects.get(pk=card.card.pk).balance == Decimal("50.00")


def test_a_marketer_issues_a_card_through_the_api_and_sees_the_code_once(as_user, marketer, support, referrer):
    client = as_user(marketer)
    payload = {"amount": "25.00", "currency": "EUR", "recipient": referrer.pk, "send_email": False, "idempotency_key": "promo-1"}
    # when a card is issued / then the answer holds the code, the card stores only its hash
    first = client.post("/api/v1/gift-cards/", payload, format="json")
    assert first.status_code == 201 and first.json()["balance"] == "25.00"
    code = first.json()["code"]
    assert code and first.json()["last4"] == code[-4:]
    card = GiftCard.objects.get()
    assert code not in str(GiftCard.objects.values().get())
    # and the same key again gives the card without its code
    replay = client.post("/api/v1/gift-cards/", payload, format="json")
    assert replay.status_code == 200 and replay.json()["id"] == card.pk and replay.json()["code"] is None
    # and the list and the detail show it, with its ledger, never the code
    listed = client.get("/api/v1/gift-cards/", {"recipient": referrer.pk}).json()["results"]
    assert [c["id"] for c in listed] == [card.pk]
    detail = client.get(f"/api/v1/gift-cards/{card.pk}/").json()
    assert detail["recipient"] == referrer.pk and [t["kind"] for t in detail["transactions"]] == ["purchase"]
    assert "code" not in detail
    # support may look but not issue
    assert_problem(as_user(support).post("/api/v1/gift-cards/", {**payload, "idempotency_key": "x"}, format="json"), 403)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "10", "currency": "EURO"}, "currency"),
        ({"amount": "10", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"amount": "10", "recipient": 999999}, "recipient"),
    ],
)
def test_issuing_a_card_with_bad_input_is_a_400_and_issues_nothing(as_user, marketer, payload, field):
    body = assert_problem(as_user(marketer).post("/api/v1/gift-cards/", payload, format="json"), 400)
    assert field in body["fields"] and not GiftCard.objects.exists()


# --- referral sign-ups through the API ----------------------------------------------------------
def test_a_host_records_a_friends_sign_up_and_lists_the_referrals(as_user, marketer, support, referral_program, referrer):
    client = as_user(marketer)
    code = client.post(f"/api/v1/contacts/{referrer.pk}/referral/").json()["code"]
    signup = {"code": code.lower(), "email": "Linus@Example.org", "first_name": "Linus", "ip_address": "203.0.113.9"}
    created = client.post("/api/v1/referrals/", signup, format="json")
    assert created.status_code == 201 and created.json()["status"] == "pending" and created.json()["code"] == code
    assert created.json()["referrer"] == referrer.pk
    # the same friend again is refused, and the list shows the one referral
    assert_problem(client.post("/api/v1/referrals/", signup, format="json"), 409, "referral_not_eligible")
    listed = as_user(support).get("/api/v1/referrals/", {"referrer": referrer.pk, "status": "pending"}).json()["results"]
    assert [r["id"] for r in listed] == [created.json()["id"]]


def test_the_shared_ip_rule_rejects_the_sign_ups_past_the_threshold(as_user, marketer, referral_program, referrer):
    client = as_user(marketer)
    code = client.post(f"/api/v1/contacts/{referrer.pk}/referral/").json()["code"]
    statuses = [
        client.post("/api/v1/referrals/", {"code": code, "email": f"f{n}@example.org", "ip_address": "203.0.113.7"}, format="json").json()[
            "status"
        ]
        for n in range(referral_program.shared_signup_threshold)
    ]
    assert statuses == ["pending"] * referral_program.shared_signup_threshold
    # the one past the threshold is refused with nothing created (no contact, no referral)
    refused = client.post("/api/v1/referrals/", {"code": code, "email": "over@example.org", "ip_address": "203.0.113.7"}, format="json")
    assert_problem(refused, 409, "referral_rejected")
    assert not Contact.objects.filter(email="over@example.org").exists()


def test_referral_sign_up_refusals(api, as_user, marketer, ops, approver, referral_program, referrer):
    client = as_user(marketer)
    code = client.post(f"/api/v1/contacts/{referrer.pk}/referral/").json()["code"]
    assert_problem(
        client.post("/api/v1/referrals/", {"code": "NOPE", "email": "a@example.org"}, format="json"), 404, "unknown_referral_code"
    )
    assert_problem(client.post("/api/v1/referrals/", {"code": code, "email": referrer.email}, format="json"), 409, "self_referral")
    assert (
        "email" in assert_problem(client.post("/api/v1/referrals/", {"code": code, "email": "not-an-email"}, format="json"), 400)["fields"]
    )
    assert (
        "ip_address"
        in assert_problem(
            client.post("/api/v1/referrals/", {"code": code, "email": "b@example.org", "ip_address": "999.1.1.1"}, format="json"), 400
        )["fields"]
    )
    assert_problem(as_user(ops).post("/api/v1/referrals/", {"code": code, "email": "c@example.org"}, format="json"), 403)
    assert_problem(as_user(approver).get("/api/v1/referrals/"), 403)
    assert_problem(api.get("/api/v1/referrals/"), 401)
    assert not Referral.objects.exists()
