"""Growth: referrals, loyalty and gift cards. Ledgers are append-only and never negative."""

from growth.models.giftcards import GiftCard, GiftCardAttempt, GiftCardTransaction
from growth.models.loyalty import LoyaltyAccount, LoyaltyProgram, LoyaltyTier, LoyaltyTransaction
from growth.models.referrals import Referral, ReferralCode, ReferralProgram, ReferralReward, RewardKind

__all__ = [
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
