"""Growth's domain errors: a stable code and a translated message (see messaging.errors)."""

from messaging.errors import InvalidInput, MailroomError


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class InsufficientBalance(MailroomError):
    code = "insufficient_balance"


class IdempotencyConflict(MailroomError):
    code = "idempotency_conflict"


class NoLoyaltyProgram(MailroomError):
    code = "no_loyalty_program"


class UnknownGiftCard(MailroomError):
    code = "unknown_gift_card"


class GiftCardExpired(MailroomError):
    code = "gift_card_expired"


class GiftCardDisabled(MailroomError):
    code = "gift_card_disabled"


class CurrencyMismatch(MailroomError):
    code = "currency_mismatch"


class TooManyAttempts(MailroomError):
    code = "too_many_attempts"


class UnknownReferralCode(MailroomError):
    code = "unknown_referral_code"


class ReferralProgramClosed(MailroomError):
    code = "referral_program_closed"


class SelfReferral(MailroomError):
    code = "self_referral"


class ReferralNotEligible(MailroomError):
    code = "referral_not_eligible"


class ReferralRejected(MailroomError):
    """The shared IP/device rule tripped: nothing is created for the sign-up."""

    code = "referral_rejected"


class ReferralStateError(MailroomError):
    code = "referral_state"


class CouponPoolEmpty(MailroomError):
    """A reward needs a code from a pool that has none left: nothing is rewarded yet."""

    code = "coupon_pool_empty"
