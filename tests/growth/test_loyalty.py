"""Loyalty: points earned once per paid order, reversed on refund, redeemed without ever
going below zero, adjusted by staff with a reason, expired oldest first."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from django.utils import timezone

from growth.errors import IdempotencyConflict, InsufficientBalance, InvalidAmount
from growth.loyalty import adjust_points, earn_points_for_order, expire_points, points_value, redeem_points, warn_expiring_points
from growth.models import LoyaltyAccount, LoyaltyTransaction
from growth.models.ledger import AppendOnlyError
from marketing.events import record_order, track_event
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True)

Kind = LoyaltyTransaction.Kind


def account_of(contact) -> LoyaltyAccount:
    return LoyaltyAccount.objects.get(contact=contact)


def ledger_sum(account: LoyaltyAccount) -> int:
    return account.transactions.aggregate(total=Sum("points"))["total"] or 0


def pay(contact, order_id: str, amount: str = "120.00") -> None:
    record_order(contact=contact, external_id=order_id, amount=amount, status="paid")


def test_a_paid_order_earns_points_through_the_order_event(contact, loyalty_program):
    # when the shop tells us an order was paid
    pay(contact, "A-1", "120.40")
    # then the contact earned floor(120.40 × 1) points, with an expiry a year out
    account = account_of(contact)
    assert account.balance == 120
    entry = account.transactions.get()
    assert (entry.kind, entry.points, entry.order_reference, entry.balance_after) == (Kind.EARNED, 120, "A-1", 120)
    assert entry.expires_at > timezone.now() + timedelta(days=360)


def test_replayed_order_events_and_double_webhooks_credit_one_ledger_entry(contact, loyalty_program):
    # given an order paid, then fulfilled (both count as paid)
    pay(contact, "A-2")
    record_order(contact=contact, external_id="A-2", amount="120.00", status="fulfilled")
    # when the same webhook is delivered twice more, and a replay arrives under a new key
    for _n in range(2):
        track_event(contact=contact, name="order_paid", properties={"order_id": "A-2", "amount": "120.00"}, idempotency_key="wh-1")
    track_event(contact=contact, name="order_paid", properties={"order_id": "A-2", "amount": "120.00"}, idempotency_key="wh-2")
    # then there is one credit for that order
    account = account_of(contact)
    assert account.transactions.filter(kind=Kind.EARNED, order_reference="A-2").count() == 1
    assert account.balance == 120 == ledger_sum(account)


def test_calling_the_action_twice_returns_the_first_credit(contact, loyalty_program):
    first = earn_points_for_order(contact=contact, order_reference="A-3", amount="50")
    second = earn_points_for_order(contact=contact, order_reference="A-3", amount="50")
    assert first.pk == second.pk
    assert account_of(contact).balance == 50


def test_a_refund_reverses_the_points_once(contact, loyalty_program):
    pay(contact, "A-4", "80")
    # when the order is refunded (and the refund webhook is replayed)
    record_order(contact=contact, external_id="A-4", amount="80", status="refunded")
    track_event(contact=contact, name="order_refunded", properties={"order_id": "A-4"}, idempotency_key="refund-replay")
    account = account_of(contact)
    assert account.balance == 0 == ledger_sum(account)
    assert account.transactions.filter(kind=Kind.REVERSED, order_reference="A-4").get().points == -80
    assert account.lifetime_points == 0


def test_a_refund_of_spent_points_never_takes_the_balance_below_zero(contact, loyalty_program):
    pay(contact, "A-5", "100")
    redeem_points(contact=contact, points=70, idempotency_key="spend-1")
    record_order(contact=contact, external_id="A-5", amount="100", status="refunded")
    account = account_of(contact)
    assert account.balance == 0 == ledger_sum(account)
    reversal = account.transactions.get(kind=Kind.REVERSED)
    assert reversal.points == -30 and "70" in reversal.reason


def test_tier_multiplier_applies_once_the_threshold_is_reached(contact, loyalty_program):
    pay(contact, "B-1", "1000")
    assert account_of(contact).tier.name == "Gold"
    pay(contact, "B-2", "100")
    assert account_of(contact).transactions.get(order_reference="B-2").points == 150


def test_a_failing_receiver_does_not_break_the_request_that_tracked_the_event(contact, loyalty_program, caplog):
    # an event with an amount that is not a number: the receiver logs, the event stays
    event, created = track_event(contact=contact, name="order_paid", properties={"order_id": "X-1", "amount": "lots"})
    assert created and event.pk
    assert not LoyaltyTransaction.objects.exists()
    assert "could not handle event" in caplog.text


def test_redeeming_spends_points_once_per_key(contact, loyalty_program):
    pay(contact, "C-1", "300")
    first = redeem_points(contact=contact, points=100, idempotency_key="checkout-9")
    again = redeem_points(contact=contact, points=100, idempotency_key="checkout-9")
    assert first.pk == again.pk
    account = account_of(contact)
    assert account.balance == 200 == ledger_sum(account)
    assert AuditEntry.objects.filter(verb="points_redeemed").count() == 1


def test_a_key_reused_for_another_amount_is_refused(contact, loyalty_program):
    pay(contact, "C-2", "300")
    redeem_points(contact=contact, points=100, idempotency_key="checkout-10")
    with pytest.raises(IdempotencyConflict):
        redeem_points(contact=contact, points=150, idempotency_key="checkout-10")
    assert account_of(contact).transactions.filter(kind=Kind.REDEEMED).count() == 1


@pytest.mark.parametrize("points", [0, -5, 1.5, "10", True])
def test_bad_point_amounts_are_refused_with_no_ledger_row(contact, loyalty_program, points):
    pay(contact, "C-3", "300")
    with pytest.raises(InvalidAmount) as error:
        redeem_points(contact=contact, points=points, idempotency_key="bad")
    assert error.value.code == "invalid_amount"
    assert account_of(contact).transactions.count() == 1


def test_over_redemption_is_refused_and_names_the_balance(contact, loyalty_program):
    pay(contact, "C-4", "50")
    with pytest.raises(InsufficientBalance, match="balance is 50, 51 were asked for"):
        redeem_points(contact=contact, points=51, idempotency_key="too-much")
    assert account_of(contact).balance == 50
    assert not LoyaltyTransaction.objects.filter(kind=Kind.REDEEMED).exists()


def test_staff_adjustment_needs_a_reason_and_is_audited(contact, loyalty_program, support):
    pay(contact, "D-1", "40")
    account = account_of(contact)
    with pytest.raises(InvalidInput):
        adjust_points(account=account, points=25, reason="  ", actor=support)
    assert account.transactions.count() == 1
    adjust_points(account=account, points=25, reason="Goodwill after a late delivery", actor=support)
    entry = AuditEntry.objects.get(verb="points_adjusted")
    assert entry.actor == support
    assert entry.changes["balance"] == {"before": 40, "after": 65}
    assert entry.changes["reason"] == "Goodwill after a late delivery"


def test_a_downward_adjustment_cannot_overdraw(contact, loyalty_program, support):
    pay(contact, "D-2", "40")
    with pytest.raises(InsufficientBalance):
        adjust_points(account=account_of(contact), points=-41, reason="typo", actor=support)
    assert account_of(contact).balance == 40


def test_ledger_rows_cannot_be_changed_or_deleted(contact, loyalty_program):
    pay(contact, "E-1", "40")
    entry = LoyaltyTransaction.objects.get()
    entry.points = 4000
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        LoyaltyTransaction.objects.update(points=1)
    assert LoyaltyTransaction.objects.get().points == 40


def test_points_expire_oldest_first_after_the_programs_months(contact, loyalty_program):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        pay(contact, "F-1", "100")
    with time_machine.travel(start + timedelta(days=200), tick=False):
        pay(contact, "F-2", "60")
        redeem_points(contact=contact, points=30, idempotency_key="spend-old")
    # thirteen months after the first order: its 100 points expire, minus the 30 spent
    with time_machine.travel(start + timedelta(days=396), tick=False):
        assert expire_points() == 70
        assert expire_points() == 0  # running the job twice changes nothing
    account = account_of(contact)
    assert account.balance == 60 == ledger_sum(account)
    assert account.transactions.get(kind=Kind.EXPIRED).points == -70


def test_expiry_warning_goes_out_once_thirty_days_before(contact, loyalty_program, settings):
    from django.core.management import call_command

    call_command("sync_templates", verbosity=0)
    settings.MAILROOM_SENDER_ADDRESS = "1 rue de la Paix, Paris"
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        pay(contact, "G-1", "100")
    with time_machine.travel(start + timedelta(days=340), tick=False):
        assert warn_expiring_points() == 1
        warn_expiring_points()
    messages = OutboxMessage.objects.filter(dedup_key__startswith="loyalty-expiring:")
    assert messages.count() == 1
    assert "100" in messages.get().body_text


def test_money_value_of_points_follows_the_redemption_rate(loyalty_program):
    assert points_value(loyalty_program, 250) == Decimal("2.50")
