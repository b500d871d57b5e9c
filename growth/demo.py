"""Growth's demo data for `seed_demo`: a loyalty program with three tiers and a referral
program, when none exists, so orders earn points and contacts get codes from the start."""

from decimal import Decimal

from growth.models import LoyaltyProgram, LoyaltyTier, ReferralProgram

TIERS = [("Bronze", 0, "1.00"), ("Silver", 1000, "1.25"), ("Gold", 5000, "1.50")]


def load() -> str:
    added = []
    if not LoyaltyProgram.objects.exists():
        program = LoyaltyProgram.objects.create(name="Rewards")
        LoyaltyTier.objects.bulk_create(
            LoyaltyTier(program=program, name=name, threshold=threshold, multiplier=Decimal(multiplier))
            for name, threshold, multiplier in TIERS
        )
        added.append("loyalty program Rewards (Bronze, Silver, Gold)")
    if not ReferralProgram.objects.exists():
        ReferralProgram.objects.create(name="Invite a friend")
        added.append("referral program Invite a friend")
    return f"Growth demo: {', '.join(added) or 'nothing new'}."
