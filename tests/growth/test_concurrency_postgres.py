"""Concurrency on PostgreSQL: many threads spending the same points or the same gift card
at the same instant never overdraw, and the ledger always sums to the balance."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from growth.coupons import upload_coupon_codes
from growth.errors import CouponPoolEmpty, InsufficientBalance
from growth.giftcards import issue_gift_card, redeem_gift_card
from growth.loyalty import earn_points_for_order, redeem_points
from growth.models import (
    CouponCode,
    CouponSource,
    GiftCard,
    GiftCardTransaction,
    LoyaltyAccount,
    LoyaltyTransaction,
    Referral,
    ReferralReward,
)
from growth.referrals import get_or_create_referral_code, reward_referral, sign_up_with_referral
from marketing.events import record_order, track_event
from tests.support.race import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 20


def test_really_on_postgresql():
    assert connection.vendor == "postgresql"


def test_racing_point_redemptions_never_overdraw(contact, loyalty_program):
    # given 1,000 points, and 20 requests for 150 points each (3,000 in all) at the same instant
    earn_points_for_order(contact=contact, order_reference="BIG-1", amount="1000")
    results = race([lambda n=n: redeem_points(contact=contact, points=150, idempotency_key=f"r{n}") for n in range(THREADS)])
    # then exactly 6 succeed (900 points), the other 14 get a clear "not enough points"
    succeeded = [r for r in results if isinstance(r, LoyaltyTransaction)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert (len(succeeded), len(refused)) == (6, THREADS - 6), results
    account = LoyaltyAccount.objects.get(contact=contact)
    assert account.balance == 100
    assert account.transactions.aggregate(total=Sum("points"))["total"] == account.balance
    assert min(account.transactions.values_list("balance_after", flat=True)) >= 0


def test_racing_redemptions_with_one_key_spend_once(contact, loyalty_program):
    earn_points_for_order(contact=contact, order_reference="BIG-2", amount="1000")
    results = race([lambda: redeem_points(contact=contact, points=300, idempotency_key="same-checkout") for _n in range(THREADS)])
    assert all(isinstance(r, LoyaltyTransaction) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert LoyaltyAccount.objects.get(contact=contact).balance == 700


def test_racing_gift_card_redemptions_never_overdraw(marketer, settings):
    settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CARD = 1000
    issued = issue_gift_card(actor=marketer, amount="100.00")
    # 20 checkouts of 15.00 each (300.00) against a 100.00 card
    results = race([lambda n=n: redeem_gift_card(code=issued.code, amount="15.00", idempotency_key=f"g{n}") for n in range(THREADS)])
    succeeded = [r for r in results if isinstance(r, GiftCardTransaction)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert (len(succeeded), len(refused)) == (6, THREADS - 6), results
    card = GiftCard.objects.get()
    assert card.balance == Decimal("10.00")
    assert card.transactions.aggregate(total=Sum("amount"))["total"] == card.balance


def test_racing_deliveries_of_one_paid_order_credit_once(contact, loyalty_program):
    # the same webhook delivered 20 times at once, under 20 different event keys
    race(
        [
            lambda n=n: track_event(
                contact=contact, name="order_paid", properties={"order_id": "W-1", "amount": "80"}, idempotency_key=f"d{n}"
            )
            for n in range(THREADS)
        ]
    )
    account = LoyaltyAccount.objects.get(contact=contact)
    assert account.transactions.filter(order_reference="W-1").count() == 1
    assert account.balance == 80


def test_racing_rewards_never_share_a_pool_coupon(referral_program, referrer, marketer):
    # given a friend pool of 5 codes, and 12 qualified referrals rewarded at the same instant
    referral_program.friend_coupon = CouponSource.POOL
    referral_program.save()
    upload_coupon_codes(actor=marketer, program=referral_program, role="friend", text="\n".join(f"POOL-{n:04d}" for n in range(5)))
    code = get_or_create_referral_code(contact=referrer, program=referral_program).code
    referrals = []
    for n in range(12):
        referral = sign_up_with_referral(code=code, email=f"friend{n}@example.net")
        record_order(contact=referral.friend, external_id=f"RACE-{n}", amount="100", status="paid")
        referrals.append(referral)
    results = race([lambda r=r: reward_referral(referral=r) for r in referrals])
    # then exactly 5 are rewarded, each with its own code; the other 7 wait, with nothing written
    rewarded = [r for r in results if isinstance(r, Referral)]
    waiting = [r for r in results if isinstance(r, CouponPoolEmpty)]
    assert (len(rewarded), len(waiting)) == (5, 7), results
    issued = CouponCode.objects.filter(status=CouponCode.Status.ISSUED)
    assert issued.count() == 5 and len(set(issued.values_list("reward_id", flat=True))) == 5
    assert not CouponCode.objects.filter(status=CouponCode.Status.AVAILABLE).exists()
    assert ReferralReward.objects.filter(role="friend").count() == 5
    assert Referral.objects.filter(status=Referral.Status.QUALIFIED).count() == 7
