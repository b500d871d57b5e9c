"""Growth fixtures: a running loyalty program with tiers, a referral program, people."""

from decimal import Decimal

import pytest

from growth.models import LoyaltyProgram, LoyaltyTier, ReferralProgram, RewardKind
from messaging.contacts import create_contact


@pytest.fixture
def loyalty_program(db) -> LoyaltyProgram:
    program = LoyaltyProgram.objects.create(name="Rewards", points_per_unit=Decimal("1"), redemption_rate=100, expiry_months=12)
    LoyaltyTier.objects.create(program=program, name="Bronze", threshold=0, multiplier=Decimal("1"))
    LoyaltyTier.objects.create(program=program, name="Gold", threshold=1000, multiplier=Decimal("1.5"))
    return program


@pytest.fixture
def referral_program(db) -> ReferralProgram:
    return ReferralProgram.objects.create(
        name="Invite a friend",
        referrer_reward_kind=RewardKind.POINTS,
        referrer_reward_value=Decimal("500"),
        friend_reward_kind=RewardKind.PERCENT,
        friend_reward_value=Decimal("10"),
        minimum_purchase=Decimal("30"),
    )


@pytest.fixture
def referrer(db):
    return create_contact(actor=None, email="grace@example.com", first_name="Grace", phone="+33612345678")


@pytest.fixture
def friend_email() -> str:
    return "linus@example.org"


from tests.api.conftest import _fresh_throttles, api, api_key, as_user, key_client  # noqa: E402, F401  (API clients)
