"""Analytics (seed 003's list): the overview, per-day figures, per campaign and per
automation — all read from the DailyStat rollup (plus live queue/provider figures)."""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketing import policies
from marketing.analytics import queries
from messaging.api.common import problems
from messaging.models import Channel

MAX_DAYS = 366


class RangeQuerySerializer(serializers.Serializer):
    since = serializers.DateField(
        required=False, validators=[queries.reporting_day], help_text="First local day (default: 29 days before `until`)."
    )
    until = serializers.DateField(
        required=False, validators=[queries.reporting_day], help_text="Last local day, inclusive (default: today)."
    )
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)

    def validate(self, data: dict) -> dict:
        until = data.get("until") or timezone.localdate()
        since = data.get("since") or until - timedelta(days=29)
        if since > until:
            raise serializers.ValidationError({"until": [_("Must not be before “since”.")]})
        if (until - since).days >= MAX_DAYS:
            raise serializers.ValidationError({"since": [_("The range is at most %(n)s days.") % {"n": MAX_DAYS}]})
        return {"since": since, "until": until, "channel": data.get("channel", "")}


class FiguresSerializer(serializers.Serializer):
    """Totals over a range; rates are ratios in [0, 1]."""

    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    suppressed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened_unique = serializers.IntegerField()
    opened_total = serializers.IntegerField()
    clicked_unique = serializers.IntegerField()
    clicked_total = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    replied = serializers.IntegerField()
    conversions = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    delivery_rate = serializers.FloatField()
    open_rate = serializers.FloatField()
    click_rate = serializers.FloatField()
    click_to_open_rate = serializers.FloatField()
    unsubscribe_rate = serializers.FloatField()
    bounce_rate = serializers.FloatField()
    complaint_rate = serializers.FloatField()
    conversion_rate = serializers.FloatField()


class DayFiguresSerializer(FiguresSerializer):
    day = serializers.DateField()


class ChannelFiguresSerializer(FiguresSerializer):
    channel = serializers.CharField()


class CampaignFiguresSerializer(FiguresSerializer):
    campaign_id = serializers.CharField()


class AutomationFiguresSerializer(FiguresSerializer):
    automation_id = serializers.CharField()


class QueueSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    due = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent_last_hour = serializers.IntegerField()
    sent_last_15_minutes = serializers.IntegerField()
    per_minute = serializers.FloatField()


class ProviderHealthSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    channel = serializers.CharField()
    state = serializers.ChoiceField(choices=["healthy", "degraded", "resting", "inactive"])
    consecutive_failures = serializers.IntegerField()
    resting_until = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)


class OverviewSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    channel = serializers.CharField(allow_blank=True)
    today = FiguresSerializer()
    range = FiguresSerializer()
    by_channel = ChannelFiguresSerializer(many=True)
    queue = QueueSerializer()
    providers = ProviderHealthSerializer(many=True)
    computed_at = serializers.DateTimeField(allow_null=True, help_text="When the rollup last ran for this range.")


class AnalyticsView(APIView):
    capabilities = {"get": policies.can_view_analytics}

    def filters(self, request: Request) -> queries.Filters:
        query = RangeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return queries.Filters(**query.validated_data)


class OverviewView(AnalyticsView):
    """Today and a range (default: the last 30 days): sent, delivered, rates, revenue
    attributed, per channel, queue depth and throughput, provider health."""

    @extend_schema(parameters=[RangeQuerySerializer], responses={200: OverviewSerializer, **problems(400)})
    def get(self, request: Request) -> Response:
        return Response(OverviewSerializer(queries.overview(self.filters(request))).data)


class DailyView(AnalyticsView):
    """One entry per day of the range."""

    @extend_schema(parameters=[RangeQuerySerializer], responses={200: DayFiguresSerializer(many=True), **problems(400)})
    def get(self, request: Request) -> Response:
        return Response(DayFiguresSerializer(queries.per_day(self.filters(request)), many=True).data)


class CampaignsView(AnalyticsView):
    """Figures per campaign over the range (the messages its fan-out created)."""

    @extend_schema(parameters=[RangeQuerySerializer], responses={200: CampaignFiguresSerializer(many=True), **problems(400)})
    def get(self, request: Request) -> Response:
        rows = queries.breakdown(self.filters(request), by="campaign_id")
        return Response(CampaignFiguresSerializer(rows, many=True).data)


class AutomationsView(AnalyticsView):
    """Figures per automation over the range (the messages its send steps queued)."""

    @extend_schema(parameters=[RangeQuerySerializer], responses={200: AutomationFiguresSerializer(many=True), **problems(400)})
    def get(self, request: Request) -> Response:
        rows = queries.breakdown(self.filters(request), by="automation_id")
        return Response(AutomationFiguresSerializer(rows, many=True).data)
