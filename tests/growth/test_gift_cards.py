"""Gift cards: a code shown once and stored hashed, partial redemption that never
overdraws, idempotent keys, clear errors with no ledger row, throttled guessing."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from growth.errors import (
    CurrencyMismatch,
    GiftCardDisabled,
    GiftCardExpired,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidAmount,
    TooManyAttempts,
    UnknownGiftCard,
)
from growth.giftcards import (
    ALPHABET,
    disable_gift_card,
    expire_gift_cards,
    hash_code,
    issue_gift_card,
    issue_gift_cards,
    redeem_gift_card,
    refund_to_gift_card,
)
from growth.models import GiftCard, GiftCardTransaction
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, OutboxMessage
from messaging.secrets import attach_secrets, reveal

pytestmark = pytest.mark.django_db

Kind = GiftCardTransaction.Kind


def ledger_sum(card: GiftCard) -> Decimal:
    return card.transactions.aggregate(total=Sum("amount"))["total"]


@pytest.fixture
def card_and_code(marketer):
    issued = issue_gift_card(actor=marketer, amount="50.00", currency="EUR")
    return issued.card, issued.code


def test_a_code_is_16_unambiguous_characters_shown_once_and_stored_hashed(marketer):
    issued = issue_gift_card(actor=marketer, amount="25", idempotency_key="order-77-card")
    raw = issued.code.replace("-", "")
    assert len(raw) == 16 and set(raw) <= set(ALPHABET)
    assert not set(raw) & set("01OI")
    card = GiftCard.objects.get()
    assert card.code_hash == hash_code(issued.code) and card.last4 == raw[-4:]
    assert raw not in str(list(GiftCard.objects.values()))  # the code is nowhere in the row
    assert raw not in str(list(AuditEntry.objects.values()))
    # replaying the issue returns the same card and no code
    again = issue_gift_card(actor=marketer, amount="25", idempotency_key="order-77-card")
    assert again.card.pk == card.pk and again.code is None
    assert GiftCard.objects.count() == 1


def test_bulk_issue_makes_distinct_cards_in_one_batch(marketer):
    issued = issue_gift_cards(actor=marketer, count=20, amount="10", batch="spring")
    assert len({i.code for i in issued}) == 20
    assert GiftCard.objects.filter(batch="spring").count() == 20
    assert GiftCardTransaction.objects.filter(kind=Kind.PURCHASE).count() == 20


def test_partial_redemptions_until_the_balance_is_spent(card_and_code):
    card, code = card_and_code
    redeem_gift_card(code=code, amount="20", idempotency_key="o-1")
    redeem_gift_card(code=code.lower().replace("-", " "), amount="30", idempotency_key="o-2")  # typed loosely
    card.refresh_from_db()
    assert card.balance == Decimal("0.00") == ledger_sum(card)
    with pytest.raises(InsufficientBalance, match=r"Only €0.00 left"):
        redeem_gift_card(code=code, amount="0.01", idempotency_key="o-3")


def test_a_duplicated_redemption_key_creates_one_ledger_entry(card_and_code):
    card, code = card_and_code
    first = redeem_gift_card(code=code, amount="20", idempotency_key="pay-1")
    second = redeem_gift_card(code=code, amount="20", idempotency_key="pay-1")
    assert first.pk == second.pk
    assert card.transactions.filter(kind=Kind.REDEMPTION).count() == 1
    with pytest.raises(IdempotencyConflict):
        redeem_gift_card(code=code, amount="25", idempotency_key="pay-1")


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("-5", InvalidAmount),
        ("0", InvalidAmount),
        ("abc", InvalidAmount),
        ("1.001", InvalidAmount),
        ("NaN", InvalidAmount),
        ("60", InsufficientBalance),
    ],
)
def test_bad_amounts_get_a_clear_error_and_no_ledger_row(card_and_code, amount, error):
    card, code = card_and_code
    with pytest.raises(error):
        redeem_gift_card(code=code, amount=amount, idempotency_key="k")
    card.refresh_from_db()
    assert card.balance == Decimal("50.00")
    assert card.transactions.count() == 1  # the purchase only


def test_unknown_code_expired_and_disabled_cards_are_refused(card_and_code, marketer):
    card, code = card_and_code
    with pytest.raises(UnknownGiftCard, match="not valid"):
        redeem_gift_card(code="AAAA-BBBB-CCCC-DDDD", amount="5", idempotency_key="k1")
    with pytest.raises(CurrencyMismatch):
        redeem_gift_card(code=code, amount="5", currency="USD", idempotency_key="k2")
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        expiring = issue_gift_card(actor=marketer, amount="10", expires_at=timezone.now() + timedelta(hours=1))
    with time_machine.travel(timezone.now() + timedelta(days=2)), pytest.raises(GiftCardExpired):
        redeem_gift_card(code=expiring.code, amount="5", idempotency_key="k3")
    disable_gift_card(card=card, reason="Reported stolen", actor=marketer)
    with pytest.raises(GiftCardDisabled):
        redeem_gift_card(code=code, amount="5", idempotency_key="k4")
    assert not GiftCardTransaction.objects.filter(kind=Kind.REDEMPTION).exists()


def test_disabling_needs_a_reason_keeps_the_card_and_is_audited(card_and_code, marketer):
    card, _code = card_and_code
    with pytest.raises(InvalidInput):
        disable_gift_card(card=card, reason="", actor=marketer)
    disable_gift_card(card=card, reason="Fraud", actor=marketer)
    card.refresh_from_db()
    assert card.disabled_at and card.disabled_reason == "Fraud"
    assert AuditEntry.objects.filter(verb="gift_card_disabled", actor=marketer).exists()


def test_repeated_bad_codes_lock_the_ip_out_even_for_a_good_code(card_and_code, settings):
    settings.MAILROOM_GIFT_CARD_MAX_BAD_CODES = 3
    _card, code = card_and_code
    for n in range(3):
        with pytest.raises(UnknownGiftCard):
            redeem_gift_card(code=f"WRONG{n}", amount="1", idempotency_key=f"g{n}", ip_address="203.0.113.9")
    with pytest.raises(TooManyAttempts):
        redeem_gift_card(code=code, amount="1", idempotency_key="real", ip_address="203.0.113.9")
    # another IP is not locked out
    redeem_gift_card(code=code, amount="1", idempotency_key="real", ip_address="198.51.100.1")
    # and the lockout ends with its window
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        redeem_gift_card(code=code, amount="1", idempotency_key="later", ip_address="203.0.113.9")


def test_attempts_on_one_card_are_throttled_per_minute(card_and_code, settings):
    settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CARD = 3
    card, code = card_and_code
    for n in range(3):
        redeem_gift_card(code=code, amount="1", idempotency_key=f"t{n}", ip_address=f"198.51.100.{n}")
    with pytest.raises(TooManyAttempts, match="this gift card"):
        redeem_gift_card(code=code, amount="1", idempotency_key="t9", ip_address="198.51.100.77")
    card.refresh_from_db()
    assert card.balance == Decimal("47.00")


def test_refund_puts_back_at_most_what_was_spent(card_and_code):
    card, code = card_and_code
    redeem_gift_card(code=code, amount="30", idempotency_key="r-1", order_reference="O-1")
    with pytest.raises(InvalidAmount):
        refund_to_gift_card(card=card, amount="31", idempotency_key="rf-1")
    refund_to_gift_card(card=card, amount="30", idempotency_key="rf-1")
    refund_to_gift_card(card=card, amount="30", idempotency_key="rf-1")  # replay
    card.refresh_from_db()
    assert card.balance == Decimal("50.00") == ledger_sum(card)


def test_expiry_job_zeroes_expired_cards_once(marketer):
    issued = issue_gift_card(actor=marketer, amount="40", expires_at=timezone.now() + timedelta(days=1))
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert expire_gift_cards() == 1
        assert expire_gift_cards() == 0
    card = GiftCard.objects.get(pk=issued.card.pk)
    assert card.balance == 0 == ledger_sum(card)
    assert card.transactions.get(kind=Kind.EXPIRY).amount == Decimal("-40.00")


def test_issuing_to_a_contact_queues_the_catalog_delivery_email_once(marketer, contact, django_capture_on_commit_callbacks):
    call_command("sync_templates", verbosity=0)
    with django_capture_on_commit_callbacks(execute=True):
        issued = issue_gift_card(actor=marketer, amount="50", recipient=contact, sender_name="Grace", message="Joyeux anniversaire")
    message = OutboxMessage.objects.get(dedup_key=f"gift-card-delivered:{issued.card.pk}")
    # the stored body holds a marker, the code is sealed and filled in at send time
    assert message.is_sensitive and issued.code not in message.body_text + message.body_html and "Grace" in message.subject
    attach_secrets(message)
    assert issued.code in reveal(message, message.body_text) and issued.code in reveal(message, message.body_html)
    assert re.search(r"50\.00", message.body_text)


def test_issue_refuses_bad_input(marketer):
    for kwargs in ({"amount": "-1"}, {"amount": "0"}, {"amount": "10", "currency": "EURO"}, {"amount": "10", "expires_at": timezone.now()}):
        with pytest.raises(InvalidInput):
            issue_gift_card(actor=marketer, **kwargs)
    assert not GiftCard.objects.exists()


def test_a_refund_in_another_currency_is_refused_and_writes_nothing(card_and_code):
    # given a EUR card with 20.00 spent
    card, code = card_and_code
    redeem_gift_card(code=code, amount="20", idempotency_key="spend")
    # when 5.00 is refunded in GBP, or with a currency that is not one
    with pytest.raises(CurrencyMismatch, match="EUR"):
        refund_to_gift_card(card=card, amount="5", currency="GBP", idempotency_key="refund-gbp")
    with pytest.raises(InvalidInput):
        refund_to_gift_card(card=card, amount="5", currency="€", idempotency_key="refund-symbol")
    # then the ledger and the balance did not move
    card.refresh_from_db()
    assert card.balance == Decimal("30.00") == ledger_sum(card)
    assert not card.transactions.filter(kind=Kind.REFUND).exists()
    refund_to_gift_card(card=card, amount="5", currency="eur", idempotency_key="refund-eur")
    card.refresh_from_db()
    assert card.balance == Decimal("35.00")


@pytest.mark.parametrize("count", [1, 3])
def test_a_console_form_submitted_twice_issues_once_and_masks_the_codes(admin_client, count):
    # given the issue form, rendered once with its one-time submission key
    url = "/admin/growth/giftcard/issue/"
    submission = re.search(r'name="submission" value="([0-9a-f]{32})"', admin_client.get(url).content.decode()).group(1)
    form = {"count": count, "amount": "20", "currency": "EUR", "submission": submission}
    # when it is posted, then posted again (a reload)
    first = admin_client.post(url, form).content.decode()
    again = admin_client.post(url, form).content.decode()
    # then the cards were issued once, their codes shown the first time only
    cards = list(GiftCard.objects.order_by("pk"))
    assert len(cards) == count
    codes = re.findall(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", first)
    assert [hash_code(code) for code in codes] == [card.code_hash for card in cards]
    assert not re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", again)
    assert "already submitted" in again and all(f"•••• {card.last4}" in again for card in cards)
