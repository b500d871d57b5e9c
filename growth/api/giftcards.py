"""Gift cards: issue and list cards, one card with its ledger, a contact's cards, redeem
by code and refund."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from growth import policies, queries
from growth.api.common import live_contact, parse
from growth.giftcards import issue_gift_card, redeem_gift_card, refund_to_gift_card
from growth.models import GiftCard, GiftCardTransaction
from messaging.api.common import problems
from messaging.delivery.throttle import client_address
from messaging.ids import parse_id
from messaging.models import ApiKey, Contact


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
