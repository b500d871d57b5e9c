"""Automations (seed 003): CRUD, activate, pause, analytics and executions, plus the
preset gallery. Thin: the automation actions hold every rule."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from marketing import policies
from marketing.api.campaigns import ApproveInputSerializer, RejectInputSerializer  # one shape for every review
from marketing.automations.actions import (
    activate_automation,
    create_automation,
    create_automation_from_preset,
    delete_automation,
    pause_automation,
    replace_steps,
    update_automation,
)
from marketing.automations.approval import approve_automation, reject_automation
from marketing.automations.presets import PRESETS
from marketing.automations.queries import automation_report, automation_runs
from marketing.automations.status import fans_out
from marketing.automations.steps.validation import CONFIG_SERIALIZERS
from marketing.models import Automation, AutomationRun, AutomationStep, AutomationStepLog, Segment
from messaging.api.common import ReadViewSet, problems
from messaging.ids import parse_id


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = AutomationStep
        fields = ["position", "kind", "config"]
        read_only_fields = fields


class AutomationSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = Automation
        fields = [
            "id",
            "name",
            "description",
            "state",
            "preset",
            "trigger_type",
            "trigger",
            "audience",
            "exit_events",
            "reentry",
            "is_transactional",
            "quiet_hours_start",
            "quiet_hours_end",
            "frequency_cap",
            "frequency_window_hours",
            "conversion_event",
            "conversion_window_days",
            "steps",
            "activated_at",
            "fans_out",
            "submitted_by",
            "submitted_at",
            "approved_by",
            "approved_at",
            "rejection_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    fans_out = serializers.SerializerMethodField(help_text="One trigger can reach many contacts: activating it needs a second person.")

    def get_fans_out(self, automation: Automation) -> bool:
        return fans_out(automation)


def _step_input_schema(kind: str, config: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """One step kind with its settings, for the schema only."""
    name = f"{kind.title()}StepInput"
    fields = {"kind": serializers.ChoiceField(choices=[kind]), "config": config(required=False)}
    return type(name, (serializers.Serializer,), {**fields, "__doc__": config.__doc__})


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="StepInput",
        serializers={kind.value: _step_input_schema(kind.value, config) for kind, config in CONFIG_SERIALIZERS.items()},
        resource_type_field_name="kind",
        many=True,
    )
)
class StepInputListSerializer(serializers.ListSerializer):
    """Steps as the schema shows them: per kind, the settings it takes."""


class StepInputSerializer(serializers.Serializer):
    """A step: its kind and the settings that kind takes (the schema lists them per kind; the
    automation actions check them, see marketing.automations.steps.validation)."""

    kind = serializers.ChoiceField(choices=AutomationStep.Kind.choices)
    config = serializers.DictField(required=False, default=dict)

    class Meta:
        list_serializer_class = StepInputListSerializer


class AutomationInputSerializer(serializers.Serializer):
    preset = serializers.ChoiceField(choices=sorted(PRESETS), required=False, help_text="Create a draft copy of this preset.")
    name = serializers.CharField(required=False, max_length=150)
    description = serializers.CharField(required=False, allow_blank=True)
    trigger_type = serializers.ChoiceField(choices=Automation.Trigger.choices, required=False)
    trigger = serializers.DictField(required=False)
    audience = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all(), required=False, allow_null=True)
    exit_events = serializers.ListField(child=serializers.DictField(), required=False)
    reentry = serializers.ChoiceField(choices=Automation.Reentry.choices, required=False)
    is_transactional = serializers.BooleanField(required=False)
    quiet_hours_start = serializers.TimeField(required=False, allow_null=True)
    quiet_hours_end = serializers.TimeField(required=False, allow_null=True)
    frequency_cap = serializers.IntegerField(required=False, min_value=0, max_value=1000)
    frequency_window_hours = serializers.IntegerField(required=False, min_value=1, max_value=24 * 31)
    conversion_event = serializers.CharField(required=False, allow_blank=True, max_length=100)
    conversion_window_days = serializers.IntegerField(required=False, min_value=1, max_value=365)
    steps = StepInputSerializer(many=True, required=False)


class StepLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = AutomationStepLog
        fields = ["step_index", "kind", "outcome", "detail", "message", "created_at"]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    logs = StepLogSerializer(many=True, read_only=True)

    class Meta:
        model = AutomationRun
        fields = [
            "id",
            "contact",
            "trigger_key",
            "trigger_event",
            "status",
            "next_step_index",
            "next_run_at",
            "started_at",
            "ended_at",
            "exit_reason",
            "logs",
        ]
        read_only_fields = fields


ReportSerializer = inline_serializer(
    "AutomationReport",
    {
        name: serializers.IntegerField()
        for name in (
            "entered",
            "active",
            "completed",
            "exited",
            "failed",
            "messages_queued",
            "messages_sent",
            "messages_suppressed",
            "messages_cancelled",
            "conversions",
        )
    },
)

PresetSerializer = inline_serializer(
    "AutomationPreset",
    {
        "key": serializers.CharField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "trigger_type": serializers.CharField(),
        "transactional": serializers.BooleanField(),
    },
    many=True,
)


class AutomationViewSet(ReadViewSet):
    """Triggered and scheduled flows. Create from scratch or `{"preset": "cart-abandoned"}`;
    a new automation is a draft until `activate`. One that fans out to many contacts
    (`fans_out`: schedule, date, segment entry, broadcast event) then waits for approval by
    someone else (`approve` / `reject`), and a change to its audience or steps sends it back."""

    queryset = Automation.objects.prefetch_related("steps").order_by("name", "id")
    serializer_class = AutomationSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    filterset_fields = ["state", "trigger_type", "is_transactional", "preset"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    capabilities = {
        "list": policies.can_view_automations,
        "retrieve": policies.can_view_automations,
        "presets": policies.can_view_automations,
        "create": policies.can_create_automations,
        "partial_update": policies.can_edit_automations,
        "destroy": policies.can_delete_automations,
        "activate": policies.can_activate_automations,
        "pause": policies.can_activate_automations,
        "approve": policies.can_approve_automations,
        "reject": policies.can_approve_automations,
        "analytics": policies.can_view_automations,
        "executions": policies.can_view_automation_runs,
    }

    @extend_schema(request=AutomationInputSerializer, responses={201: AutomationSerializer, **problems(400)})
    def create(self, request: Request) -> Response:
        data = dict(self.parse(request, AutomationInputSerializer))
        preset = data.pop("preset", None)
        if preset:
            automation = create_automation_from_preset(actor=request.user, key=preset, name=data.get("name", ""))
        else:
            steps = [dict(step) for step in data.pop("steps", [])]
            automation = create_automation(actor=request.user, name=data.pop("name", ""), steps=steps, **data)
        return Response(AutomationSerializer(self.get_queryset().get(pk=automation.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AutomationInputSerializer, responses={200: AutomationSerializer, **problems(400, 404, 409)})
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change settings; `steps` replaces every step (only while not active)."""
        automation = self.get_object()
        data = dict(self.parse(request, AutomationInputSerializer))
        data.pop("preset", None)
        steps = data.pop("steps", None)
        if data:
            automation = update_automation(actor=request.user, automation=automation, **data)
        if steps is not None:
            replace_steps(actor=request.user, automation=automation, steps=[dict(step) for step in steps])
        return Response(AutomationSerializer(self.get_queryset().get(pk=automation.pk)).data)

    @extend_schema(request=None, responses={204: None, **problems(404, 409)})
    def destroy(self, request: Request, pk: str) -> Response:
        delete_automation(actor=request.user, automation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: AutomationSerializer, **problems(400, 404, 409)})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        """Go live; a fan-out automation is submitted for approval instead (state `pending`)."""
        automation = activate_automation(actor=request.user, automation=self.get_object())
        return Response(AutomationSerializer(self.get_queryset().get(pk=automation.pk)).data)

    @extend_schema(request=ApproveInputSerializer, responses={200: AutomationSerializer, **problems(403, 404, 409)})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """A fan-out automation waiting for approval goes live; never by its author. Send
        the `submitted_at` you reviewed."""
        seen = self.parse(request, ApproveInputSerializer).get("submitted_at")
        automation = approve_automation(actor=request.user, automation=self.get_object(), seen=seen)
        return Response(AutomationSerializer(self.get_queryset().get(pk=automation.pk)).data)

    @extend_schema(request=RejectInputSerializer, responses={200: AutomationSerializer, **problems(400, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """Send a waiting automation back with a reason."""
        data = self.parse(request, RejectInputSerializer)
        automation = reject_automation(actor=request.user, automation=self.get_object(), reason=data["reason"])
        return Response(AutomationSerializer(self.get_queryset().get(pk=automation.pk)).data)

    @extend_schema(request=None, responses={200: AutomationSerializer, **problems(404, 409)})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        automation = pause_automation(actor=request.user, automation=self.get_object())
        return Response(AutomationSerializer(self.get_queryset().get(pk=automation.pk)).data)

    @extend_schema(responses={200: ReportSerializer, **problems(404)})
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def analytics(self, request: Request, pk: str) -> Response:
        """Entered, completed, exited, messages and conversions (the conversion event within
        the window after entering)."""
        return Response(automation_report(automation=self.get_object()))

    @extend_schema(responses={200: RunSerializer(many=True), **problems(404)})
    @action(detail=True, methods=["get"], filterset_fields=[], search_fields=[], ordering_fields=["started_at", "id"])
    def executions(self, request: Request, pk: str) -> Response:
        """Runs, newest first, each with its step history; `?contact=<id>` narrows to one contact."""
        runs = automation_runs(automation=self.get_object())
        if "contact" in request.query_params:
            runs = runs.filter(contact_id=parse_id(request.query_params["contact"]))
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(responses={200: PresetSerializer})
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def presets(self, request: Request) -> Response:
        """The preset gallery: one POST with {"preset": key} creates an editable draft."""
        return Response(
            [
                {
                    "key": p.key,
                    "name": str(p.name),
                    "description": str(p.description),
                    "trigger_type": p.trigger_type,
                    "transactional": p.transactional,
                }
                for p in PRESETS.values()
            ]
        )
