"""Growth's API, mounted by config/api.py under /api/v1/: referrals (a contact's code and
what it brought), loyalty (summary, ledger, redeem) and gift cards (a contact's cards,
redeem by code, refund). Thin views over growth.queries and the growth actions."""

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from growth import policies, queries
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
from growth.giftcards import issue_gift_card, redeem_gift_card, refund_to_gift_card
from growth.loyalty import redeem_points
from growth.models import GiftCard, GiftCardTransaction, LoyaltyTransaction, Referral
from growth.referrals import create_referral_code, sign_up_with_referral
from messaging.api.common import problems
from messaging.api.problems import register_error_status
from messaging.delivery.throttle import client_address
from messaging.ids import parse_id
from messaging.models import ApiKey, Contact

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


# --- referrals ---------------------------------------------------------------------------------
class RewardSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()
    currency = serializers.CharField()


class ReferralStatsSerializer(serializers.Serializer):
    code = serializers.CharField(allow_null=True, help_text="The contact's shareable code (null until one is created).")
    url = serializers.CharField(allow_null=True)
    referrals = serializers.DictField(child=serializers.IntegerField(), help_text="Referrals by status.")
    total = serializers.IntegerField()
    rewards = RewardSerializer(many=True)


class ReferralView(APIView):
    """A contact's referral code and what it brought (GET); POST creates the code if needed."""

    capabilities = {"get": policies.can_view_referrals, "post": policies.can_create_referral_codes}

    @extend_schema(responses={200: ReferralStatsSerializer, **problems(404)})
    def get(self, request: Request, contact_id: int) -> Response:
        return Response(ReferralStatsSerializer(queries.referral_stats(contact=live_contact(contact_id))).data)

    @extend_schema(request=None, responses={200: ReferralStatsSerializer, 201: ReferralStatsSerializer, **problems(404, 409)})
    def post(self, request: Request, contact_id: int) -> Response:
        contact = live_contact(contact_id)
        _code, created = create_referral_code(actor=request.user, contact=contact)
        body = ReferralStatsSerializer(queries.referral_stats(contact=contact)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ReferralSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="code.code", read_only=True)

    class Meta:
        model = Referral
        fields = [
            "id",
            "program",
            "code",
            "referrer",
            "friend",
            "status",
            "rejection_reason",
            "order_reference",
            "order_amount",
            "expires_at",
            "created_at",
            "qualified_at",
            "rewarded_at",
            "closed_at",
        ]
        read_only_fields = fields


class ReferralSignupSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    email = serializers.CharField(max_length=254)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    locale = serializers.ChoiceField(choices=["en", "fr"], required=False, default="en")
    ip_address = serializers.IPAddressField(
        required=False, allow_null=True, default=None, help_text="The friend's, for the shared IP rule."
    )
    device_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class ReferralsView(GenericAPIView):
    """Referrals, newest first (`?status=`, `?referrer=<contact id>`); POST records a friend
    signing up with a code on the host's own form: 201 with the pending referral, or a 409
    (referral_rejected, nothing created) when too many sign-ups came from one IP address or
    device."""

    serializer_class = ReferralSerializer
    capabilities = {"get": policies.can_view_referrals, "post": policies.can_record_referrals}

    def get_queryset(self):
        rows = Referral.objects.select_related("code").order_by("-created_at", "-id")
        status_, referrer = self.request.query_params.get("status", ""), self.request.query_params.get("referrer", "")
        if status_ in Referral.Status.values:
            rows = rows.filter(status=status_)
        return rows.filter(referrer_id=parse_id(referrer)) if referrer else rows

    @extend_schema(responses={200: ReferralSerializer(many=True)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=ReferralSignupSerializer, responses={201: ReferralSerializer, **problems(400, 404, 409)})
    def post(self, request: Request) -> Response:
        referral = sign_up_with_referral(actor=request.user, **parse(request, ReferralSignupSerializer))
        return Response(ReferralSerializer(referral).data, status=status.HTTP_201_CREATED)


# --- loyalty ----------------------------------------------------------------------------------
class NextTierSerializer(serializers.Serializer):
    name = serializers.CharField()
    points_needed = serializers.IntegerField()


class LoyaltySummarySerializer(serializers.Serializer):
    account_id = serializers.IntegerField()
    program = serializers.CharField()
    balance = serializers.IntegerField()
    value = serializers.CharField(help_text="What the balance is worth, in the program's currency.")
    currency = serializers.CharField()
    lifetime_points = serializers.IntegerField()
    tier = serializers.CharField(allow_null=True)
    next_tier = NextTierSerializer(allow_null=True)


class LoyaltyTransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoyaltyTransaction
        fields = ["id", "kind", "points", "balance_after", "order_reference", "idempotency_key", "reason", "expires_at", "created_at"]
        read_only_fields = fields


class RedeemPointsSerializer(serializers.Serializer):
    points = serializers.IntegerField(min_value=1)
    idempotency_key = serializers.CharField(max_length=200)
    order_reference = serializers.CharField(max_length=128, required=False, default="")


def summary_or_404(contact: Contact) -> dict:
    summary = queries.loyalty_summary(contact=contact)
    if summary is None:
        raise NoLoyaltyProgram("This contact has no loyalty account.")
    return summary


class LoyaltyView(APIView):
    """A contact's loyalty account: balance, its value, tier and the next one."""

    capabilities = {"get": policies.can_view_loyalty}

    @extend_schema(responses={200: LoyaltySummarySerializer, **problems(404)})
    def get(self, request: Request, contact_id: int) -> Response:
        return Response(LoyaltySummarySerializer(summary_or_404(live_contact(contact_id))).data)


class LoyaltyLedgerView(GenericAPIView):
    """The account's ledger, newest first (paginated)."""

    serializer_class = LoyaltyTransactionSerializer
    capabilities = {"get": policies.can_view_loyalty}

    def get_queryset(self):
        account = queries.loyalty_account_for(contact=live_contact(self.kwargs["contact_id"]))
        if account is None:
            raise NoLoyaltyProgram("This contact has no loyalty account.")
        return queries.loyalty_ledger(account=account)

    @extend_schema(responses={200: LoyaltyTransactionSerializer(many=True), **problems(404)})
    def get(self, request: Request, contact_id: int) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class RedeemPointsView(APIView):
    """Spend points; the same idempotency key again returns the first redemption (200)."""

    capabilities = {"post": policies.can_redeem_points}

    @extend_schema(
        request=RedeemPointsSerializer,
        responses={201: LoyaltyTransactionSerializer, 200: LoyaltyTransactionSerializer, **problems(400, 404, 409)},
    )
    def post(self, request: Request, contact_id: int) -> Response:
        contact = live_contact(contact_id)
        data = parse(request, RedeemPointsSerializer)
        replay = LoyaltyTransaction.objects.filter(idempotency_key=data["idempotency_key"]).exists()
        entry = redeem_points(
            contact=contact,
            points=data["points"],
            idempotency_key=data["idempotency_key"],
            order_reference=data["order_reference"],
            actor=request.user,
        )
        return Response(LoyaltyTransactionSerializer(entry).data, status=status.HTTP_200_OK if replay else status.HTTP_201_CREATED)


# --- gift cards -------------------------------------------------------------------------------
class GiftCardSerializer(serializers.ModelSerializer):
    class Meta:
        model = GiftCard
        fields = [
            "id",
            "last4",
            "initial_amount",
            "balance",
            "currency",
            "expires_at",
            "disabled_at",
            "sender_name",
            "message",
            "created_at",
        ]
        read_only_fields = fields


class GiftCardTransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = GiftCardTransaction
        fields = ["id", "card", "kind", "amount", "balance_after", "idempotency_key", "order_reference", "created_at"]
        read_only_fields = fields


class RedeemGiftCardSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False, help_text="When given, must be the card's currency.")
    idempotency_key = serializers.CharField(max_length=200)
    order_reference = serializers.CharField(max_length=128, required=False, default="")
    customer = serializers.CharField(
        max_length=128,
        required=False,
        default="",
        help_text="Your reference for the customer redeeming (optional): wrong codes then lock out that customer, not your whole integration.",
    )


class RefundGiftCardSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False, help_text="When given, must be the card's currency.")
    idempotency_key = serializers.CharField(max_length=200)
    order_reference = serializers.CharField(max_length=128, required=False, default="")


class GiftCardDetailSerializer(GiftCardSerializer):
    recipient = serializers.PrimaryKeyRelatedField(read_only=True)
    transactions = GiftCardTransactionSerializer(many=True, read_only=True)

    class Meta(GiftCardSerializer.Meta):
        fields = [*GiftCardSerializer.Meta.fields, "recipient", "transactions"]
        read_only_fields = fields


class IssuedGiftCardSerializer(GiftCardSerializer):
    code = serializers.CharField(allow_null=True, help_text="The code in clear: shown in this answer only (null on a replay).")

    class Meta(GiftCardSerializer.Meta):
        fields = [*GiftCardSerializer.Meta.fields, "code"]
        read_only_fields = fields


class IssueGiftCardSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False, default="EUR")
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    recipient = serializers.PrimaryKeyRelatedField(
        queryset=Contact.objects.active().filter(erased_at__isnull=True), required=False, allow_null=True
    )
    sender_name = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    message = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    send_email = serializers.BooleanField(required=False, default=True, help_text="Email the card to the recipient.")
    idempotency_key = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class GiftCardsView(GenericAPIView):
    """Issue a gift card (POST: the code is in this answer only; the same idempotency key
    again answers 200 without it) or list the cards, newest first (`?recipient=<contact id>`)."""

    serializer_class = GiftCardSerializer
    capabilities = {"get": policies.can_view_gift_cards, "post": policies.can_issue_gift_cards}

    def get_queryset(self):
        cards = GiftCard.objects.order_by("-created_at", "-id")
        recipient = self.request.query_params.get("recipient", "")
        return cards.filter(recipient_id=parse_id(recipient)) if recipient else cards

    @extend_schema(responses={200: GiftCardSerializer(many=True)})
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=IssueGiftCardSerializer, responses={201: IssuedGiftCardSerializer, 200: IssuedGiftCardSerializer, **problems(400)}
    )
    def post(self, request: Request) -> Response:
        data = parse(request, IssueGiftCardSerializer)
        issued = issue_gift_card(actor=request.user, idempotency_key=data.pop("idempotency_key") or None, **data)
        body = {**GiftCardSerializer(issued.card).data, "code": issued.code}
        return Response(body, status=status.HTTP_201_CREATED if issued.code else status.HTTP_200_OK)


class GiftCardDetailView(APIView):
    """One card with its ledger (the code is never shown again: last 4 only)."""

    capabilities = {"get": policies.can_view_gift_cards}

    @extend_schema(responses={200: GiftCardDetailSerializer, **problems(404)})
    def get(self, request: Request, card_id: int) -> Response:
        card = get_object_or_404(GiftCard.objects.prefetch_related("transactions"), pk=card_id)
        return Response(GiftCardDetailSerializer(card).data)


class ContactGiftCardsView(GenericAPIView):
    """The gift cards a contact received (codes are never shown again: last 4 only)."""

    serializer_class = GiftCardSerializer
    capabilities = {"get": policies.can_view_gift_cards}

    def get_queryset(self):
        return queries.gift_cards_for(contact=live_contact(self.kwargs["contact_id"]))

    @extend_schema(responses={200: GiftCardSerializer(many=True), **problems(404)})
    def get(self, request: Request, contact_id: int) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def _replayed(key: str) -> bool:
    return GiftCardTransaction.objects.filter(idempotency_key=key).exists()


class RedeemGiftCardView(APIView):
    """Spend part or all of a card by its code. The same idempotency key again returns the
    first redemption (200); attempts are rate-limited per IP and per card."""

    capabilities = {"post": policies.can_redeem_gift_cards}

    @extend_schema(
        request=RedeemGiftCardSerializer,
        responses={201: GiftCardTransactionSerializer, 200: GiftCardTransactionSerializer, **problems(400, 404, 409, 429)},
    )
    def post(self, request: Request) -> Response:
        data = parse(request, RedeemGiftCardSerializer)
        replay = _replayed(data["idempotency_key"])
        entry = redeem_gift_card(
            code=data["code"],
            amount=data["amount"],
            currency=data.get("currency"),
            idempotency_key=data["idempotency_key"],
            order_reference=data["order_reference"],
            ip_address=client_address(request),
            actor=request.user,
            client=f"key:{request.auth.pk}" if isinstance(request.auth, ApiKey) else "",
            customer=data["customer"],
        )
        return Response(GiftCardTransactionSerializer(entry).data, status=status.HTTP_200_OK if replay else status.HTTP_201_CREATED)


class RefundGiftCardView(APIView):
    """Put back money spent from a card (never more than was redeemed)."""

    capabilities = {"post": policies.can_refund_gift_cards}

    @extend_schema(
        request=RefundGiftCardSerializer,
        responses={201: GiftCardTransactionSerializer, 200: GiftCardTransactionSerializer, **problems(400, 404, 409)},
    )
    def post(self, request: Request, card_id: int) -> Response:
        card = get_object_or_404(GiftCard, pk=card_id)
        data = parse(request, RefundGiftCardSerializer)
        replay = _replayed(data["idempotency_key"])
        entry = refund_to_gift_card(
            card=card,
            amount=data["amount"],
            currency=data.get("currency"),
            idempotency_key=data["idempotency_key"],
            order_reference=data["order_reference"],
            actor=request.user,
        )
        return Response(GiftCardTransactionSerializer(entry).data, status=status.HTTP_200_OK if replay else status.HTTP_201_CREATED)


routes: list = []  # no viewsets: plain views only (config/api.py reads both)

urlpatterns = [
    path("contacts/<int:contact_id>/referral/", ReferralView.as_view(), name="contact-referral"),
    path("referrals/", ReferralsView.as_view(), name="referrals"),
    path("contacts/<int:contact_id>/loyalty/", LoyaltyView.as_view(), name="contact-loyalty"),
    path("contacts/<int:contact_id>/loyalty/transactions/", LoyaltyLedgerView.as_view(), name="contact-loyalty-transactions"),
    path("contacts/<int:contact_id>/loyalty/redeem/", RedeemPointsView.as_view(), name="contact-loyalty-redeem"),
    path("contacts/<int:contact_id>/gift-cards/", ContactGiftCardsView.as_view(), name="contact-gift-cards"),
    path("gift-cards/", GiftCardsView.as_view(), name="gift-cards"),
    path("gift-cards/<int:card_id>/", GiftCardDetailView.as_view(), name="gift-card-detail"),
    path("gift-cards/redeem/", RedeemGiftCardView.as_view(), name="gift-card-redeem"),
    path("gift-cards/<int:card_id>/refund/", RefundGiftCardView.as_view(), name="gift-card-refund"),
]
