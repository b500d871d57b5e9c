"""Campaigns (seed 003): create and edit drafts, the approval flow (submit, approve, reject),
schedule or send, pause, resume, cancel, the dry run, the report and the recipients.

Thin: every rule (transitions, four eyes, guardrails, edit-after-approval) lives in
`marketing.campaigns.actions`, which the console calls too."""

from dataclasses import asdict

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from marketing.campaigns import actions, policies
from marketing.campaigns.preview import dry_run
from marketing.campaigns.queries import RECIPIENT_STATUSES, campaign_recipients, campaign_report
from marketing.models import Campaign, CampaignRecipient, CampaignVariant, Segment
from messaging.api.common import ReadViewSet, problems
from messaging.errors import InvalidInput
from messaging.models import TemplateVersion, Topic


class VariantSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignVariant
        fields = ["label", "subject", "template_version"]
        read_only_fields = fields


class CampaignSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(slug_field="key", read_only=True)
    variants = VariantSerializer(many=True, read_only=True)
    created_by = serializers.StringRelatedField()
    approved_by = serializers.StringRelatedField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "state",
            *actions.SCALAR_FIELDS,  # what the actions let one edit, in their order
            "segments",
            "excluded_segments",
            "variants",
            "fanout",
            "recipient_count",
            "created_by",
            "approved_by",
            "approved_at",
            "rejection_reason",
            "pause_reason",
            "submitted_at",
            "started_at",
            "finished_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class VariantInputSerializer(serializers.Serializer):
    subject = serializers.CharField(required=False, allow_blank=True, max_length=998)
    template_version = serializers.PrimaryKeyRelatedField(queryset=TemplateVersion.objects.all(), required=False, allow_null=True)


class CampaignInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=200)
    channel = serializers.ChoiceField(choices=Campaign.CHANNELS, required=False)
    topic = serializers.SlugRelatedField(slug_field="key", queryset=Topic.objects.all(), required=False)
    from_address = serializers.CharField(required=False, allow_blank=True, max_length=254)
    template_version = serializers.PrimaryKeyRelatedField(queryset=TemplateVersion.objects.all(), required=False, allow_null=True)
    segments = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all(), many=True, required=False)
    excluded_segments = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all(), many=True, required=False)
    variants = VariantInputSerializer(many=True, required=False, help_text="Two to four A/B variants, labelled A, B, C, D in order.")
    send_mode = serializers.ChoiceField(choices=Campaign.SendMode.choices, required=False)
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    local_time = serializers.TimeField(required=False, allow_null=True)
    throttle_per_hour = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=10_000_000)
    quiet_hours_start = serializers.TimeField(required=False, allow_null=True)
    quiet_hours_end = serializers.TimeField(required=False, allow_null=True)
    ab_test_share = serializers.IntegerField(required=False, min_value=0, max_value=90)
    ab_wait_hours = serializers.IntegerField(required=False, min_value=1, max_value=24 * 14)
    ab_metric = serializers.ChoiceField(choices=Campaign.Metric.choices, required=False)
    complaint_rate_limit = serializers.DecimalField(required=False, max_digits=5, decimal_places=2, min_value=0, max_value=100)
    bounce_rate_limit = serializers.DecimalField(required=False, max_digits=5, decimal_places=2, min_value=0, max_value=100)
    respect_frequency_cap = serializers.BooleanField(required=False)
    attribution_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
    context = serializers.DictField(required=False, help_text='Extra template values, e.g. {"promo_code": "SPRING"}.')


class RejectInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ApproveInputSerializer(serializers.Serializer):
    """For campaigns and automations alike: what the approver looked at."""

    submitted_at = serializers.DateTimeField(
        required=False,
        help_text="The `submitted_at` you reviewed: if it was changed and submitted again since, the approval is refused (409).",
    )


class RecipientSerializer(serializers.ModelSerializer):
    email = serializers.CharField(source="contact.email", read_only=True)
    status = serializers.ChoiceField(
        source="delivery_status",
        choices=list(RECIPIENT_STATUSES.items()),
        read_only=True,
        help_text="What happened: its message's status once created (sent, failed…), holdout, or skipped.",
    )
    variant = serializers.CharField(source="variant.label", read_only=True, default="")
    message_status = serializers.CharField(source="message.status", read_only=True, default="")

    class Meta:
        model = CampaignRecipient
        fields = ["id", "contact", "email", "status", "skip_reason", "variant", "scheduled_at", "message", "message_status"]
        read_only_fields = fields


DryRunSerializer = inline_serializer(
    "CampaignDryRun",
    {
        **{
            name: serializers.IntegerField()
            for name in ("audience", "eligible", "excluded_consent", "suppressed", "missing_address", "over_frequency_cap")
        },
        "problems": serializers.ListField(child=serializers.CharField()),
        "samples": serializers.ListField(child=serializers.DictField()),
    },
)
ReportSerializer = inline_serializer(
    "CampaignReport", {"sent": serializers.IntegerField(), "variants": serializers.ListField(), "languages": serializers.ListField()}
)


class CampaignViewSet(ReadViewSet):
    """Campaigns and their approval flow: draft → pending_approval (`submit`) → approved
    (`approve` by someone other than the author, or `reject` with a reason) → scheduled
    (`schedule`: at the campaign's send time, or now) → sending ⇄ paused → sent; `cancel`
    stops it. Editing the content, audience (or its segments' rules and members), merge data,
    sender, schedule or guardrails after submission makes it a draft again."""

    queryset = Campaign.objects.select_related("topic", "created_by", "approved_by").prefetch_related(
        "segments", "excluded_segments", "variants"
    )
    serializer_class = CampaignSerializer
    search_fields = ["name"]
    ordering_fields = ["name", "send_at", "created_at", "updated_at"]
    filterset_fields = ["state", "channel", "topic__key"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    capabilities = {
        "list": policies.can_view_campaigns,
        "retrieve": policies.can_view_campaigns,
        "dry_run": policies.can_view_campaigns,
        "recipients": policies.can_view_campaigns,
        "report": policies.can_view_report,
        "create": policies.can_create_campaign,
        "partial_update": policies.can_edit_campaign,
        "submit": policies.can_edit_campaign,
        "reopen": policies.can_edit_campaign,
        "approve": policies.can_approve_campaign,
        "reject": policies.can_approve_campaign,
        "schedule": policies.can_send_campaign,
        "pause": policies.can_send_campaign,
        "resume": policies.can_send_campaign,
        "cancel": policies.can_send_campaign,
    }

    def get_queryset(self):
        return super().get_queryset().order_by("-created_at", "-id")

    def _answer(self, campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
        return Response(CampaignSerializer(self.get_queryset().get(pk=campaign.pk)).data, status=code)

    @staticmethod
    def _values(data: dict) -> dict:
        values = dict(data)
        if "variants" in values:
            values["variants"] = [dict(variant) for variant in values["variants"]]
        return values

    @extend_schema(request=CampaignInputSerializer, responses={201: CampaignSerializer, **problems(400)})
    def create(self, request: Request) -> Response:
        """A new draft; it may be incomplete until it is submitted."""
        values = self._values(self.parse(request, CampaignInputSerializer))
        if "topic" not in values:
            raise InvalidInput(_("A campaign needs a topic."), fields={"topic": [_("This field is required.")]})
        campaign = actions.create_campaign(actor=request.user, name=values.pop("name", ""), **values)
        return self._answer(campaign, status.HTTP_201_CREATED)

    @extend_schema(request=CampaignInputSerializer, responses={200: CampaignSerializer, **problems(400, 404, 409)})
    def partial_update(self, request: Request, pk: str) -> Response:
        campaign = actions.update_campaign(
            actor=request.user, campaign=self.get_object(), **self._values(self.parse(request, CampaignInputSerializer))
        )
        return self._answer(campaign)

    @extend_schema(request=None, responses={200: CampaignSerializer, **problems(400, 404, 409)})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Ask for approval; refused (400, each problem named) while it could not be sent."""
        return self._answer(actions.submit_campaign(actor=request.user, campaign=self.get_object()))

    @extend_schema(request=ApproveInputSerializer, responses={200: CampaignSerializer, **problems(403, 404, 409)})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Approve a campaign waiting for approval; neither its author nor whoever submitted
        it can (four eyes). Send the `submitted_at` you reviewed."""
        seen = self.parse(request, ApproveInputSerializer).get("submitted_at")
        return self._answer(actions.approve_campaign(actor=request.user, campaign=self.get_object(), seen=seen))

    @extend_schema(request=RejectInputSerializer, responses={200: CampaignSerializer, **problems(400, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        reason = self.parse(request, RejectInputSerializer)["reason"]
        return self._answer(actions.reject_campaign(actor=request.user, campaign=self.get_object(), reason=reason))

    @extend_schema(request=None, responses={200: CampaignSerializer, **problems(404, 409)})
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str) -> Response:
        return self._answer(actions.reopen_campaign(actor=request.user, campaign=self.get_object()))

    @extend_schema(request=None, responses={200: CampaignSerializer, **problems(400, 404, 409)})
    @action(detail=True, methods=["post"])
    def schedule(self, request: Request, pk: str) -> Response:
        """Schedule an approved campaign at its send time; with send mode "now" it starts
        within the minute (this is the seed's "send")."""
        return self._answer(actions.schedule_campaign(actor=request.user, campaign=self.get_object()))

    @extend_schema(request=None, responses={200: CampaignSerializer, **problems(404, 409)})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return self._answer(actions.pause_campaign(actor=request.user, campaign=self.get_object()))

    @extend_schema(request=None, responses={200: CampaignSerializer, **problems(404, 409)})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._answer(actions.resume_campaign(actor=request.user, campaign=self.get_object()))

    @extend_schema(request=None, responses={200: CampaignSerializer, **problems(404, 409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._answer(actions.cancel_campaign(actor=request.user, campaign=self.get_object()))

    @extend_schema(responses={200: DryRunSerializer, **problems(404)})
    @action(detail=True, methods=["get"], url_path="dry-run", pagination_class=None, filter_backends=[])
    def dry_run(self, request: Request, pk: str) -> Response:
        """What sending would do now (counts by reason, five sample renders); creates nothing."""
        return Response(asdict(dry_run(campaign=self.get_object())))

    @extend_schema(responses={200: ReportSerializer, **problems(404)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def report(self, request: Request, pk: str) -> Response:
        """Sent, delivered, opens, clicks, unsubscribes, bounces, complaints, conversions and
        revenue, per variant, per link and per language."""
        return Response(campaign_report(self.get_object()))

    @extend_schema(responses={200: RecipientSerializer(many=True), **problems(404)})
    @action(detail=True, methods=["get"], filterset_fields=[], search_fields=[], ordering_fields=["id"])
    def recipients(self, request: Request, pk: str) -> Response:
        """Each contact of the audience and what happened: queued, sending, sent, failed,
        cancelled or suppressed (its message's status), waiting for the A/B winner, or
        skipped with the reason. `?status=` and `?skip_reason=` narrow the list."""
        filters = {}
        for name, choices in (("status", list(RECIPIENT_STATUSES)), ("skip_reason", CampaignRecipient.Skip.values)):
            value = request.query_params.get(name)
            if value is not None:
                if value not in choices:
                    raise InvalidInput(
                        _("Choose one of: %(choices)s.") % {"choices": ", ".join(choices)}, fields={name: [_("Unknown value.")]}
                    )
                filters[name] = value
        page = self.paginate_queryset(campaign_recipients(self.get_object(), **filters))
        return self.get_paginated_response(RecipientSerializer(page, many=True).data)
