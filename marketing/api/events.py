"""Events (`POST /api/v1/events/`, one or a batch, idempotent by key) and orders.

The contact is named by id, email or external id; an unknown email creates the contact
(an event like user_registered is often the first thing we hear of someone)."""

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from marketing import policies
from marketing.events import record_order, track_event
from marketing.models import Event, Order
from messaging.api.common import ReadViewSet, problems
from messaging.contact_fields import normalise_email
from messaging.contacts import create_contact
from messaging.errors import InvalidInput
from messaging.models import Contact

MAX_BATCH = 500


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "contact", "name", "properties", "occurred_at", "idempotency_key", "source", "received_at"]
        read_only_fields = fields


class EventResultSerializer(EventSerializer):
    created = serializers.SerializerMethodField(help_text="False when the idempotency key was seen before.")

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "created"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_created(self, event: Event) -> bool:
        return self.context["created"]


EVENTS_TRACKED = PolymorphicProxySerializer(
    component_name="EventsTracked",
    serializers=[EventResultSerializer, EventResultSerializer(many=True)],
    resource_type_field_name=None,
    many=False,  # one event answers an object, a batch a list
)


class ContactRefSerializer(serializers.Serializer):
    contact = serializers.IntegerField(required=False, help_text="A contact id, or give email / external_id.")
    email = serializers.CharField(required=False)
    external_id = serializers.CharField(required=False)

    def validate(self, data):
        if not any(data.get(name) for name in ("contact", "email", "external_id")):
            raise serializers.ValidationError({"contact": ["Name the contact by id, email or external_id."]})
        return data


class EventInputSerializer(ContactRefSerializer):
    name = serializers.CharField(max_length=100)
    properties = serializers.DictField(required=False, default=dict)
    occurred_at = serializers.DateTimeField(required=False)
    idempotency_key = serializers.CharField(required=False, max_length=200)


class EventBatchSerializer(serializers.Serializer):
    events = EventInputSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "contact", "external_id", "amount", "currency", "status", "placed_at", "paid_at", "details"]
        read_only_fields = fields


class OrderInputSerializer(ContactRefSerializer):
    order_id = serializers.CharField(max_length=128)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, default="EUR")
    status = serializers.ChoiceField(choices=Order.Status.choices)
    placed_at = serializers.DateTimeField(required=False)
    details = serializers.DictField(required=False)


def resolve_contact(data: dict, *, actor) -> Contact:
    live = Contact.objects.active().filter(erased_at__isnull=True)
    if data.get("contact"):
        contact = live.filter(pk=data["contact"]).first()
    elif data.get("external_id"):
        contact = live.filter(external_id=data["external_id"]).first()
    else:
        try:
            email = normalise_email(data["email"])
        except Exception as error:  # a ValidationError naming the bad address
            raise InvalidInput(str(getattr(error, "messages", [error])[0]), fields={"email": [str(error)]}) from None
        contact = live.filter(email=email).first() or create_contact(actor=actor, email=email)
    if contact is None:
        raise InvalidInput("No such contact.", fields={"contact": ["No such contact."]})
    return contact


class EventViewSet(ReadViewSet):
    queryset = Event.objects.order_by("-occurred_at", "-id")
    serializer_class = EventSerializer
    filterset_fields = ["name", "contact"]
    ordering_fields = ["occurred_at", "id"]
    capabilities = {
        "list": policies.can_view_events,
        "retrieve": policies.can_view_events,
        "create": policies.can_track_events,
    }

    @extend_schema(request=EventBatchSerializer, responses={201: EVENTS_TRACKED, 200: EVENTS_TRACKED, **problems(400)})
    def create(self, request: Request) -> Response:
        """Record one event (the body is the event) or many ({"events": [...]}, at most
        500). A repeated idempotency_key returns the first event and creates nothing; the
        answer is 201 when at least one event is new, else 200."""
        batch = isinstance(request.data, dict) and "events" in request.data  # a JSON number or list is a 400, not a 500
        items = self.parse(request, EventBatchSerializer)["events"] if batch else [self.parse(request, EventInputSerializer)]
        results, created_any = [], False
        with transaction.atomic():
            for item in items:
                event, created = track_event(
                    contact=resolve_contact(item, actor=request.user),
                    name=item["name"],
                    properties=item.get("properties"),
                    occurred_at=item.get("occurred_at"),
                    idempotency_key=item.get("idempotency_key"),
                    source="api",
                )
                created_any |= created
                results.append(EventResultSerializer(event, context={"created": created}).data)
        body = results if batch else results[0]
        return Response(body, status=status.HTTP_201_CREATED if created_any else status.HTTP_200_OK)


class OrderViewSet(ReadViewSet):
    queryset = Order.objects.order_by("-placed_at", "-id")
    serializer_class = OrderSerializer
    filterset_fields = ["status", "contact"]
    ordering_fields = ["placed_at", "amount", "id"]
    capabilities = {
        "list": policies.can_view_orders,
        "retrieve": policies.can_view_orders,
        "create": policies.can_record_orders,
    }

    @extend_schema(request=OrderInputSerializer, responses={200: OrderSerializer, 201: OrderSerializer, **problems(400)})
    def create(self, request: Request) -> Response:
        """Create or update the mirror of one order by its order_id; a status change
        records an order_<status> event once (automations, loyalty and referrals react)."""
        data = self.parse(request, OrderInputSerializer)
        with transaction.atomic():
            order, previous = record_order(
                contact=resolve_contact(data, actor=request.user),
                external_id=data["order_id"],
                amount=data["amount"],
                status=data["status"],
                currency=data["currency"],
                placed_at=data.get("placed_at"),
                details=data.get("details"),
            )
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED if previous is None else status.HTTP_200_OK)
