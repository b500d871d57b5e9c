"""Outbox messages (enqueue, status, cancel), suppressions and message statistics.

Thin: enqueue_message, cancel_message, suppress_address and lift_suppression hold the
rules (addresses, dedup keys, what can be cancelled); the views parse and render."""

from dataclasses import asdict

import django_filters
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import policies, queries
from messaging.api.common import ReadViewSet, UtcDateTimeFilter, problems
from messaging.attachments import from_base64
from messaging.consent import lift_suppression, suppress_address
from messaging.delivery.outbox import cancel_message, enqueue_bulk, enqueue_message
from messaging.metadata import INTERNAL_METADATA_KEYS
from messaging.models import Attachment, Channel, Contact, DeliveryEvent, OutboxMessage, Suppression, Template, Topic


# --- outbox ---------------------------------------------------------------------------------
class AttachmentSerializer(serializers.ModelSerializer):
    """What is attached (never the bytes: the console's download checks who may read them)."""

    class Meta:
        model = Attachment
        fields = ["id", "filename", "content_type", "size", "content_id"]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    to = serializers.CharField(source="to_address")
    topic = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)
    attachments = serializers.SerializerMethodField(help_text="The files attached; empty for a message carrying a secret.")

    @extend_schema_field(AttachmentSerializer(many=True))
    def get_attachments(self, message: OutboxMessage) -> list[dict]:
        if not message.has_attachments or message.is_sensitive:
            return []
        return AttachmentSerializer(message.attachments.all(), many=True).data

    class Meta:
        model = OutboxMessage
        fields = [
            "id",
            "channel",
            "contact",
            "to",
            "topic",
            "is_marketing",
            "is_sensitive",
            "subject",
            "status",
            "error",
            "priority",
            "attempts",
            "max_attempts",
            "scheduled_at",
            "next_attempt_at",
            "sent_at",
            "created_at",
            "body_pruned_at",
            "dedup_key",
            "provider_message_id",
            "metadata",
            "attachments",
        ]
        read_only_fields = fields


class TemplateKeyField(serializers.SlugRelatedField):
    """A template by key; enqueue picks the contact's language variant of it."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="key", queryset=Template.objects.order_by("pk"), **kwargs)

    def to_internal_value(self, data):
        template = self.get_queryset().filter(key=str(data)).first()
        if template is None:
            self.fail("does_not_exist", slug_name=self.slug_field, value=str(data))
        return template


class MessageContentSerializer(serializers.Serializer):
    """What a message says, on which channel and when: one message or a bulk send alike."""

    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.EMAIL)
    template = TemplateKeyField(required=False, allow_null=True, help_text="A template key; its active version is rendered.")
    subject = serializers.CharField(required=False, allow_blank=True, default="")
    text = serializers.CharField(required=False, allow_blank=True, default="")
    html = serializers.CharField(required=False, allow_blank=True, default="")
    context = serializers.DictField(required=False, default=dict, help_text="Template variables (plain data).")
    topic = serializers.SlugRelatedField(slug_field="key", queryset=Topic.objects.all(), required=False, allow_null=True)
    priority = serializers.ChoiceField(choices=OutboxMessage.Priority.choices, default=OutboxMessage.Priority.NORMAL)
    scheduled_at = serializers.DateTimeField(required=False, allow_null=True)


class EnqueueSerializer(MessageContentSerializer):
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.active(), required=False, allow_null=True)
    to = serializers.CharField(required=False, allow_blank=True, help_text="The address; defaults to the contact's.")
    dedup_key = serializers.CharField(
        required=False, allow_null=True, max_length=200, help_text="Sending the same key again returns the first message (200)."
    )
    metadata = serializers.DictField(
        required=False, default=dict, help_text="Your own keys; the keys Mailroom writes itself (render, links, campaign_id…) are refused."
    )

    attachments = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        max_length=50,
        help_text='Email only: [{"filename", "content_type", "content" (base64), "content_id"?, "inline"?}]; '
        'an inline image is shown by the HTML through its Content-ID: `src="cid:CONTENT_ID"` on an img tag.',
    )

    def validate_metadata(self, value: dict) -> dict:
        if internal := sorted(INTERNAL_METADATA_KEYS.intersection(value)):
            raise serializers.ValidationError(
                _("These metadata keys are Mailroom's own and cannot be set: %(keys)s.") % {"keys": ", ".join(internal)}
            )
        return value


class BulkSerializer(MessageContentSerializer):
    key = serializers.CharField(max_length=100, help_text="Names this send: the same key again queues nothing twice.")
    recipients = serializers.ListField(
        child=serializers.CharField(max_length=254), required=False, default=list, max_length=1000, help_text="Addresses."
    )
    contacts = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.active(), many=True, required=False, default=list)
    priority = serializers.ChoiceField(choices=OutboxMessage.Priority.choices, default=OutboxMessage.Priority.BULK)


BulkResultSerializer = inline_serializer(
    "BulkResult",
    {
        "queued": serializers.IntegerField(),
        "deduplicated": serializers.IntegerField(help_text="Already queued by an earlier call with the same key."),
        "skipped": serializers.DictField(child=serializers.CharField(), help_text="Recipient → why it got nothing."),
    },
)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class MessageFilter(django_filters.FilterSet):
    topic = django_filters.CharFilter(field_name="topic__key")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = OutboxMessage
        fields = ["status", "channel", "contact", "dedup_key", "to_address", "priority"]


class MessageViewSet(ReadViewSet):
    """The outbox. POST enqueues (idempotent by `dedup_key`), GET follows the status,
    `cancel` stops a message that is still queued (409 otherwise)."""

    queryset = OutboxMessage.objects.select_related("topic").prefetch_related("attachments")
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    search_fields = ["to_address", "subject"]
    ordering_fields = ["id", "created_at", "sent_at", "priority", "next_attempt_at"]
    ordering = ["-id"]
    capabilities = {
        "list": policies.can_view_messages,
        "retrieve": policies.can_view_messages,
        "create": policies.can_enqueue_messages,
        "bulk": policies.can_enqueue_messages,
        "cancel": policies.can_manage_messages,
    }

    @extend_schema(
        request=EnqueueSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, description="The dedup key was seen before: the first message."),
            **problems(400, 409),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = EnqueueSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        message = enqueue_message(
            channel=data["channel"],
            contact=data.get("contact"),
            to=data.get("to") or None,
            template=data.get("template"),
            subject=data["subject"],
            text=data["text"],
            html=data["html"],
            context=data["context"],
            topic=data.get("topic"),
            priority=data["priority"],
            scheduled_at=data.get("scheduled_at"),
            dedup_key=data.get("dedup_key") or None,
            metadata=data["metadata"],
            attachments=from_base64(data["attachments"]),
        )
        code = status.HTTP_200_OK if message.deduplicated else status.HTTP_201_CREATED
        location = reverse("api:message-detail", args=[message.pk])
        return Response(MessageSerializer(message).data, status=code, headers={"Location": location})

    @extend_schema(request=BulkSerializer, responses={202: BulkResultSerializer, **problems(400)})
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        """The same message to up to 1,000 recipients (addresses and/or contact ids); each
        one that cannot get it is skipped with the reason. More than that is a campaign."""
        data = dict(self.parse(request, BulkSerializer))
        recipients = [*data.pop("contacts"), *data.pop("recipients")]
        result = enqueue_bulk(channel=data.pop("channel"), recipients=recipients, key=data.pop("key"), **data)
        return Response(asdict(result), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=CancelSerializer, responses={200: MessageSerializer, **problems(404, 409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel a queued message. One already sending, sent or finished is a 409."""
        serializer = CancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message = cancel_message(actor=request.user, message=self.get_object(), reason=serializer.validated_data["reason"])
        return Response(MessageSerializer(message).data)


# --- suppressions ----------------------------------------------------------------------------
class SuppressionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "address", "channel", "reason", "note", "created_at"]
        read_only_fields = ["id", "created_at"]
        # Types only; suppress_address normalises the address and checks the rest.
        extra_kwargs = {"reason": {"default": Suppression.Reason.MANUAL}, "note": {"default": ""}, "address": {"validators": []}}
        validators = []  # duplicates are not an error: suppressing twice keeps the first


class SuppressionFilter(django_filters.FilterSet):
    address = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Suppression
        fields = ["address", "channel", "reason"]


class SuppressionViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, ReadViewSet):
    """Addresses never sent to on a channel, whatever the topic. Creating one for an address
    already suppressed returns the existing suppression; deleting lifts it."""

    queryset = Suppression.objects.all()
    serializer_class = SuppressionSerializer
    filterset_class = SuppressionFilter
    search_fields = ["address", "note"]
    ordering_fields = ["id", "created_at", "address"]
    ordering = ["-created_at", "-id"]
    capabilities = {
        "list": policies.can_view_suppressions,
        "retrieve": policies.can_view_suppressions,
        "create": policies.can_add_suppressions,
        "destroy": policies.can_lift_suppressions,
    }

    @extend_schema(responses={201: SuppressionSerializer, **problems(400)})
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        suppression = suppress_address(actor=request.user, **serializer.validated_data)
        return Response(SuppressionSerializer(suppression).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None, **problems(404)})
    def destroy(self, request: Request, pk: str) -> Response:
        lift_suppression(actor=request.user, suppression=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- statistics ------------------------------------------------------------------------------
class StatsQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="Messages created from this time on (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="…and before this time.")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)

    def validate(self, data: dict) -> dict:
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise serializers.ValidationError({"until": [_("Must be later than “since”.")]})
        return data


def _counts(values) -> serializers.DictField:
    return serializers.DictField(child=serializers.IntegerField(), help_text=", ".join(values))


class ChannelStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = _counts(OutboxMessage.Status.values)


class MessageStatsSerializer(serializers.Serializer):
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField()
    by_status = _counts(OutboxMessage.Status.values)
    by_channel = serializers.DictField(child=ChannelStatsSerializer())
    events = _counts(DeliveryEvent.Kind.values)


class MessageStatsView(APIView):
    """Outbox totals by status and channel, and delivery events, over an optional window."""

    capabilities = {"get": policies.can_view_messages}

    @extend_schema(parameters=[StatsQuerySerializer], responses={200: MessageStatsSerializer, **problems(400)})
    def get(self, request: Request) -> Response:
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(MessageStatsSerializer(queries.message_stats(**query.validated_data)).data)
