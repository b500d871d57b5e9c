"""Small pieces growth's API resources share, and the HTTP status of growth's errors."""

from django.shortcuts import get_object_or_404
from rest_framework import serializers
from rest_framework.request import Request

from growth.errors import (
    GiftCardDisabled,
    GiftCardExpired,
    IdempotencyConflict,
    InsufficientBalance,
    NoLoyaltyProgram,
    ReferralNotEligible,
    ReferralProgramClosed,
    ReferralRejected,
    SelfReferral,
    TooManyAttempts,
    UnknownGiftCard,
    UnknownReferralCode,
)
from messaging.api.problems import register_error_status
from messaging.models import Contact

for error, code in (
    (InsufficientBalance, 409),
    (IdempotencyConflict, 409),
    (GiftCardDisabled, 409),
    (GiftCardExpired, 409),
    (ReferralProgramClosed, 409),
    (ReferralNotEligible, 409),
    (ReferralRejected, 409),
    (SelfReferral, 409),
    (UnknownReferralCode, 404),
    (NoLoyaltyProgram, 404),
    (UnknownGiftCard, 404),
    (TooManyAttempts, 429),
):
    register_error_status(error, code)


def live_contact(contact_id: int) -> Contact:
    return get_object_or_404(Contact.objects.active().filter(erased_at__isnull=True), pk=contact_id)


def parse(request: Request, serializer_class: type[serializers.Serializer]) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
