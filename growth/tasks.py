"""django-q2 entry points: thin, they call the actions and return a summary."""

from growth.giftcards import expire_gift_cards
from growth.loyalty import expire_points, warn_expiring_points
from growth.referrals import process_referral_rewards


def process_referrals() -> dict[str, int]:
    return process_referral_rewards()


def expire_loyalty_points() -> dict[str, int]:
    return {"warned": warn_expiring_points(), "expired_points": expire_points()}


def expire_cards() -> int:
    return expire_gift_cards()
