"""Growth: referrals, loyalty and gift cards. Ledgers are append-only and never negative."""

from growth.models.coupons import CouponCode
from growth.models.giftcards import GiftCard, GiftCardAttempt, GiftCardTransaction
from growth.models.loyalty import LoyaltyAccount, LoyaltyProgram, LoyaltyTier, LoyaltyTransaction
from growth.models.referrals import CouponSource, Referral, ReferralCode, ReferralProgram, ReferralReward, RewardKind

__all__ = [
    "CouponCode",
    "CouponSource",
    "GiftCard",
    "GiftCardAttempt",
    "GiftCardTransaction",
    "LoyaltyAccount",
    "LoyaltyProgram",
    "LoyaltyTier",
    "LoyaltyTransaction",
    "Referral",
    "ReferralCode",
    "ReferralProgram",
    "ReferralReward",
    "RewardKind",
]
