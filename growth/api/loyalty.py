"""Loyalty: a contact's account (balance, value, tier), its ledger and redeeming points."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from growth import policies, queries
from growth.api.common import live_contact, parse
from growth.errors import NoLoyaltyProgram
from growth.loyalty import redeem_points
from growth.models import LoyaltyTransaction
from messaging.api.common import problems
from messaging.models import Contact


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
