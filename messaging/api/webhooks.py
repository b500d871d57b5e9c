"""Outbound webhook endpoints (create, read, change, delete) and their delivery log (read,
replay). The signing secret is in the 201 response to a create and nowhere else.

Thin: create_endpoint, change_endpoint, delete_endpoint and replay_delivery hold the rules
(http(s) only, no private addresses, known event types); the views parse and render."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from messaging import policies
from messaging.api.common import ReadViewSet, problems
from messaging.models import WebhookDelivery, WebhookEndpoint
from messaging.webhooks.endpoints import change_endpoint, create_endpoint, delete_endpoint, replay_delivery


class WebhookEndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "event_types", "is_active", "consecutive_failures", "disabled_at", "disabled_reason", "created_at"]
        read_only_fields = fields


class CreatedWebhookEndpointSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret (whsec_…): shown in this response only.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointInput(serializers.Serializer):
    """Types only; the action checks the URL and the event types."""

    name = serializers.CharField(max_length=100, allow_blank=True)
    url = serializers.CharField(max_length=500, allow_blank=True)
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=True)
    is_active = serializers.BooleanField(default=True)


class WebhookEndpointViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, ReadViewSet):
    """Where events are sent. Deliveries are signed the Standard Webhooks way with the
    endpoint's secret, which the create response returns once."""

    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    ordering = ["name", "id"]
    capabilities = {
        "list": policies.can_view_webhooks,
        "retrieve": policies.can_view_webhooks,
        "create": policies.can_create_webhooks,
        "partial_update": policies.can_change_webhooks,
        "destroy": policies.can_delete_webhooks,
    }

    @extend_schema(request=WebhookEndpointInput, responses={201: CreatedWebhookEndpointSerializer, **problems(400)})
    def create(self, request: Request) -> Response:
        created = create_endpoint(actor=request.user, **self.parse(request, WebhookEndpointInput))
        data = {**WebhookEndpointSerializer(created.endpoint).data, "secret": created.secret}
        response = Response(data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(request=WebhookEndpointInput, responses={200: WebhookEndpointSerializer, **problems(400, 404)})
    def partial_update(self, request: Request, pk: str) -> Response:
        endpoint = self.get_object()
        serializer = WebhookEndpointInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        current = {"name": endpoint.name, "url": endpoint.url, "event_types": endpoint.event_types, "is_active": endpoint.is_active}
        endpoint = change_endpoint(actor=request.user, endpoint=endpoint, **(current | serializer.validated_data))
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(responses={204: None, **problems(404)})
    def destroy(self, request: Request, pk: str) -> Response:
        delete_endpoint(actor=request.user, endpoint=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_type",
            "webhook_id",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "is_sealed",
        ]
        read_only_fields = fields
        extra_kwargs = {"is_sealed": {"help_text": "The body carries a secret: it is stored sealed and never shown."}}


class WebhookDeliveryViewSet(ReadViewSet):
    """The delivery log: one row per event per endpoint, newest first."""

    queryset = WebhookDelivery.objects.all()
    serializer_class = WebhookDeliverySerializer
    filterset_fields = ["endpoint", "status", "event_type"]
    ordering = ["-id"]
    capabilities = {
        "list": policies.can_view_webhook_deliveries,
        "retrieve": policies.can_view_webhook_deliveries,
        "replay": policies.can_replay_webhooks,
    }

    @extend_schema(request=None, responses={200: WebhookDeliverySerializer, **problems(404)})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str) -> Response:
        """Send the delivery again, with the same webhook-id and body."""
        return Response(WebhookDeliverySerializer(replay_delivery(actor=request.user, delivery=self.get_object())).data)
