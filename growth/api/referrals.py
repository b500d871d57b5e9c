"""Referrals: a contact's code and what it brought, the list of referrals and a friend
signing up with a code, and a program's coupon pools (upload codes; counts only: no answer
ever carries a code)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from growth import policies, queries
from growth.api.common import live_contact, parse
from growth.coupons import MAX_UPLOAD, pool_counts, upload_coupon_codes
from growth.models import Referral, ReferralProgram, ReferralReward
from growth.referrals import create_referral_code, sign_up_with_referral
from messaging.api.common import problems
from messaging.ids import parse_id


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


class PoolCountsSerializer(serializers.Serializer):
    available = serializers.IntegerField()
    issued = serializers.IntegerField()
    revoked = serializers.IntegerField()


class CouponPoolsSerializer(serializers.Serializer):
    referrer = PoolCountsSerializer()
    friend = PoolCountsSerializer()
    added = serializers.IntegerField(required=False, help_text="Codes added by this upload.")
    skipped = serializers.IntegerField(required=False, help_text="Codes skipped as duplicates (in the upload twice, or already known).")


class CouponUploadSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ReferralReward.Role.choices, help_text="Whose pool: referrer or friend.")
    codes = serializers.ListField(
        child=serializers.CharField(max_length=200, allow_blank=True, trim_whitespace=True),
        max_length=MAX_UPLOAD,
        help_text="The host's single-use codes. All or nothing: one bad code and none is stored.",
    )


class CouponPoolsView(APIView):
    """A referral program's coupon pools: how many codes are available, issued and revoked
    per side (GET); POST adds the host's codes to one side's pool. Codes are write-only."""

    capabilities = {"get": policies.can_view_coupons, "post": policies.can_upload_coupons}

    @extend_schema(responses={200: CouponPoolsSerializer, **problems(404)})
    def get(self, request: Request, program_id: int) -> Response:
        program = get_object_or_404(ReferralProgram, pk=program_id)
        return Response(CouponPoolsSerializer(pool_counts(program)).data)

    @extend_schema(request=CouponUploadSerializer, responses={201: CouponPoolsSerializer, **problems(400, 404)})
    def post(self, request: Request, program_id: int) -> Response:
        program = get_object_or_404(ReferralProgram, pk=program_id)
        data = parse(request, CouponUploadSerializer)
        result = upload_coupon_codes(actor=request.user, program=program, role=data["role"], text="\n".join(data["codes"]))
        body = pool_counts(program) | {"added": result.added, "skipped": result.duplicates}
        return Response(CouponPoolsSerializer(body).data, status=status.HTTP_201_CREATED)
