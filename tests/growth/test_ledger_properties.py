"""Property-based tests of both ledgers: whatever sequence of operations runs, the balance
is the sum of the ledger rows and never goes below zero; a refused operation (not enough
balance, a reused key, a bad amount, an expired card) writes nothing.

Hypothesis runs many examples inside one test function, so the function-scoped `db`
fixture is shared: each example runs in its own savepoint, rolled back at the end.
"""

from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from growth.errors import GiftCardExpired, IdempotencyConflict, InsufficientBalance, InvalidAmount
from growth.giftcards import expire_gift_cards, issue_gift_card, redeem_gift_card, refund_to_gift_card
from growth.loyalty import adjust_points, earn_points_for_order, expire_points, get_or_create_account, redeem_points
from growth.loyalty import reverse_points_for_order as reverse_points
from growth.models import GiftCard, LoyaltyAccount

pytestmark = pytest.mark.django_db

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = st.sampled_from(["k0", "k1", "k2", "k3"])  # few keys, so replays and conflicts happen


@contextmanager
def rolled_back():
    """One example's world: everything it wrote is undone when it ends."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


class Clock:
    """Expiry moves time forward; every later operation happens at that later time."""

    def __init__(self) -> None:
        self.now = timezone.now()

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)

    def at(self):
        return time_machine.travel(self.now, tick=False)


# --- loyalty ----------------------------------------------------------------------------------

loyalty_operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(0, 3), st.integers(0, 800)),
        st.tuples(st.just("reverse"), st.integers(0, 3)),
        st.tuples(st.just("redeem"), KEYS, st.integers(1, 900)),
        st.tuples(st.just("adjust"), st.integers(-500, 500).filter(bool)),
        st.tuples(st.just("expire"), st.integers(1, 500)),
    ),
    min_size=1,
    max_size=12,
)


def loyalty_state(account: LoyaltyAccount) -> tuple[int, int, int]:
    account.refresh_from_db()
    rows = account.transactions.all()
    return account.balance, rows.aggregate(total=Sum("points", default=0))["total"], rows.count()


@PROPERTY_SETTINGS
@given(operations=loyalty_operations)
def test_any_sequence_of_loyalty_operations_keeps_the_balance_equal_to_the_ledger(operations, contact, loyalty_program, marketer):
    with rolled_back():
        clock = Clock()
        account = get_or_create_account(contact=contact)
        redeemed: dict[str, int] = {}  # key -> points, what a replay must match
        for operation in operations:
            balance, _total, rows = loyalty_state(account)
            name, *args = operation
            with clock.at():
                try:
                    if name == "earn":
                        earn_points_for_order(contact=contact, order_reference=f"O-{args[0]}", amount=args[1])
                    elif name == "reverse":
                        reverse_points(contact=contact, order_reference=f"O-{args[0]}")
                    elif name == "redeem":
                        key, points = args
                        redeem_points(contact=contact, points=points, idempotency_key=key)
                        expected = balance if key in redeemed else balance - points
                        assert (redeemed.setdefault(key, points), loyalty_state(account)[0]) == (points, expected), operation
                    elif name == "adjust":
                        adjust_points(account=account, points=args[0], reason="property test", actor=marketer)
                        assert loyalty_state(account)[0] == balance + args[0], operation
                    else:
                        clock.advance(args[0])
                        with clock.at():
                            expire_points(now=timezone.now())
                except (InsufficientBalance, IdempotencyConflict) as refusal:
                    # refused exactly when the rules say so, and nothing was written
                    if name == "redeem":
                        key, points = args
                        reused = key in redeemed and redeemed[key] != points
                        assert reused or (key not in redeemed and points > balance), (operation, refusal)
                    else:
                        assert name == "adjust" and balance + args[0] < 0, (operation, refusal)
                    assert loyalty_state(account) == (balance, balance, rows), operation
            new_balance, total, _rows = loyalty_state(account)
            assert new_balance == total >= 0, operations
            assert not account.transactions.filter(balance_after__lt=0).exists()


# --- gift cards -------------------------------------------------------------------------------

CENTS = st.integers(0, 6000).map(lambda cents: Decimal(cents) / 100)  # 0.00 is a refused amount

gift_card_operations = st.lists(
    st.one_of(
        st.tuples(st.just("redeem"), KEYS, CENTS),
        st.tuples(st.just("refund"), KEYS, CENTS),
        st.tuples(st.just("expire"), st.integers(1, 60)),
    ),
    min_size=1,
    max_size=12,
)


def card_state(card: GiftCard) -> tuple[Decimal, Decimal, int]:
    card.refresh_from_db()
    # Summed in Python: SQLite sums decimals as floats (0.01 + ... can leave 8.9e-16).
    amounts = list(card.transactions.values_list("amount", flat=True))
    return card.balance, sum(amounts, Decimal(0)), len(amounts)


@PROPERTY_SETTINGS
@given(
    initial=st.integers(1, 5000).map(lambda cents: Decimal(cents) / 100),
    expires_in_days=st.none() | st.integers(1, 60),
    operations=gift_card_operations,
)
def test_any_sequence_of_gift_card_operations_keeps_the_balance_equal_to_the_ledger(
    initial, expires_in_days, operations, marketer, settings
):
    settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CARD = 1000  # the throttle and the lockout are tested elsewhere:
    settings.MAILROOM_GIFT_CARD_MAX_BAD_CODES = 1000  # five refusals in a sequence (overdrawn, expired) would lock the card
    with rolled_back():
        clock = Clock()
        expires_at = clock.now + timedelta(days=expires_in_days) if expires_in_days else None
        issued = issue_gift_card(actor=marketer, amount=initial, expires_at=expires_at)
        card = issued.card
        assert card_state(card) == (initial, initial, 1)
        used: dict[str, tuple[str, Decimal]] = {}  # key -> (operation, amount)
        spent = Decimal(0)  # redeemed and not refunded yet
        for operation in operations:
            balance, _total, rows = card_state(card)
            name, *args = operation
            expired = expires_at is not None and expires_at <= clock.now
            with clock.at():
                try:
                    if name == "expire":
                        clock.advance(args[0])
                        with clock.at():
                            expire_gift_cards(now=timezone.now())
                        if expires_at is not None and expires_at <= clock.now:
                            assert card_state(card)[0] == 0, operation
                    else:
                        key, amount = args
                        if name == "redeem":
                            redeem_gift_card(code=issued.code, amount=amount, idempotency_key=key)
                        else:
                            refund_to_gift_card(card=card, amount=amount, idempotency_key=key)
                        replay = key in used
                        assert amount > 0 and (not replay or used[key] == (name, amount)), (operation, used)
                        if not replay:
                            assert not expired, operation
                            used[key] = (name, amount)
                            change = -amount if name == "redeem" else amount
                            spent -= change
                            assert card_state(card)[0] == balance + change, operation
                except (InsufficientBalance, IdempotencyConflict, InvalidAmount, GiftCardExpired) as refusal:
                    # refused exactly when the rules say so, and nothing was written
                    if amount <= 0:
                        assert isinstance(refusal, InvalidAmount), (operation, refusal)
                    elif key in used:
                        assert used[key] != (name, amount) and isinstance(refusal, IdempotencyConflict), (operation, refusal)
                    elif expired:
                        assert isinstance(refusal, GiftCardExpired), (operation, refusal)
                    elif name == "redeem":
                        assert isinstance(refusal, InsufficientBalance) and amount > balance, (operation, refusal)
                    else:
                        assert isinstance(refusal, InvalidAmount) and amount > spent, (operation, refusal)
                    assert card_state(card) == (balance, balance, rows), operation
            new_balance, total, _rows = card_state(card)
            assert new_balance == total >= 0, operations
            assert not card.transactions.filter(balance_after__lt=0).exists()
