"""Contacts, their subscriptions (consent per topic and channel) and unsubscribes.

Thin: serializers parse the JSON, the actions in messaging.contacts / messaging.preferences
hold every rule (what a valid contact is, duplicates, consent records, cancelling queued
marketing after a withdrawal)."""

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import policies
from messaging.api.common import ReadViewSet, UtcDateTimeFilter, consent_context, problems
from messaging.api.problems import register_error_status
from messaging.contacts import create_contact, delete_contact, erase_contact, update_contact
from messaging.models import Channel, Contact, Subscription, Topic
from messaging.preferences import set_subscriptions, unsubscribe_address, unsubscribe_contact
from messaging.verification import Throttled, send_email_verification

register_error_status(Throttled, 429)


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id",
            "email",
            "phone",
            "external_id",
            "first_name",
            "last_name",
            "locale",
            "timezone",
            "attributes",
            "push_tokens",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ContactInputSerializer(serializers.Serializer):
    """Types only: what a valid email, phone, language or time zone is (messaging.contact_fields)
    and duplicates (messaging.contacts) are decided by the same rules as the console and the CSV import."""

    email = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    phone = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    external_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    first_name = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(required=False, allow_blank=True)
    locale = serializers.CharField(required=False, allow_blank=True)
    timezone = serializers.CharField(required=False, allow_blank=True)
    attributes = serializers.DictField(required=False)
    push_tokens = serializers.ListField(child=serializers.CharField(), required=False)


class ContactFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(lookup_expr="iexact")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Contact
        fields = ["email", "phone", "external_id", "locale", "timezone"]


class SubscriptionSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(slug_field="key", read_only=True)
    topic_name = serializers.CharField(source="topic.name", read_only=True)
    topic_kind = serializers.CharField(source="topic.kind", read_only=True)

    class Meta:
        model = Subscription
        fields = ["topic", "topic_name", "topic_kind", "channel", "status", "updated_at"]
        read_only_fields = fields


class SubscriptionChoiceSerializer(serializers.Serializer):
    topic = serializers.SlugRelatedField(slug_field="key", queryset=Topic.objects.all())
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.EMAIL)
    status = serializers.ChoiceField(choices=Subscription.Status.choices)


class SubscriptionsUpdateSerializer(serializers.Serializer):
    subscriptions = SubscriptionChoiceSerializer(many=True, allow_empty=False)
    wording_version = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")


class UnsubscribeContactSerializer(serializers.Serializer):
    topic = serializers.SlugRelatedField(
        slug_field="key", queryset=Topic.objects.all(), required=False, allow_null=True, help_text="Omit for every topic."
    )
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.EMAIL)


class UnsubscribeAddressSerializer(UnsubscribeContactSerializer):
    address = serializers.CharField(help_text="An email address or a phone number, depending on the channel.")


class UnsubscribedSerializer(serializers.Serializer):
    contact = serializers.IntegerField(allow_null=True, source="contact.pk", default=None)
    suppressed = serializers.SerializerMethodField()
    subscriptions = SubscriptionSerializer(many=True)

    def get_suppressed(self, obj) -> bool:
        return obj.suppression is not None


def subscriptions_of(contact: Contact):
    return contact.subscriptions.select_related("topic").order_by("topic__position", "topic__name", "channel")


class ContactViewSet(ReadViewSet):
    """People Mailroom talks to. Deleting is a soft delete; `erase` is the GDPR erasure."""

    queryset = Contact.objects.active()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["email", "phone", "external_id", "first_name", "last_name"]
    ordering_fields = ["id", "created_at", "updated_at", "email", "last_name"]
    ordering = ["-created_at", "-id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    capabilities = {
        "list": policies.can_view_contacts,
        "retrieve": policies.can_view_contacts,
        "create": policies.can_create_contacts,
        "partial_update": policies.can_change_contacts,
        "destroy": policies.can_delete_contacts,
        "erase": policies.can_delete_contacts,
        "subscriptions:get": policies.can_view_subscriptions,
        "subscriptions:patch": policies.can_change_subscriptions,
        "unsubscribe": policies.can_change_subscriptions,
        "verify_email": policies.can_change_contacts,
    }

    @extend_schema(request=ContactInputSerializer, responses={201: ContactSerializer, **problems(400, 409)})
    def create(self, request: Request) -> Response:
        data = self.parse(request, ContactInputSerializer)
        contact = create_contact(actor=request.user, **data)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ContactInputSerializer, responses={200: ContactSerializer, **problems(400, 404, 409)})
    def partial_update(self, request: Request, pk: str) -> Response:
        contact = update_contact(actor=request.user, contact=self.get_object(), **self.parse(request, ContactInputSerializer))
        return Response(ContactSerializer(contact).data)

    @extend_schema(request=None, responses={204: None, **problems(404)})
    def destroy(self, request: Request, pk: str) -> Response:
        delete_contact(actor=request.user, contact=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={202: inline_serializer("VerificationQueued", {"message": serializers.IntegerField()}), **problems(400, 404, 429)},
    )
    @action(detail=True, methods=["post"], url_path="verify-email")
    def verify_email(self, request: Request, pk: str) -> Response:
        """Email the contact a single-use link that confirms their address (seed 000). A few
        per address per hour; more answer 429."""
        message = send_email_verification(actor=request.user, contact=self.get_object())
        return Response({"message": message.pk}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={204: None, **problems(404)})
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, pk: str) -> Response:
        """GDPR erasure: everything that identifies the person is removed. Irreversible."""
        erase_contact(actor=request.user, contact=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["get"], responses={200: SubscriptionSerializer(many=True), **problems(404)})
    @extend_schema(
        methods=["patch"], request=SubscriptionsUpdateSerializer, responses={200: SubscriptionSerializer(many=True), **problems(400, 404)}
    )
    @action(detail=True, methods=["get", "patch"], pagination_class=None, filter_backends=[])
    def subscriptions(self, request: Request, pk: str) -> Response:
        """The contact's consent per topic and channel. PATCH sets the listed ones; every
        change is written to the consent log (source "api")."""
        contact = self.get_object()
        if request.method == "PATCH":
            data = self.parse(request, SubscriptionsUpdateSerializer)
            choices = [(item["topic"], item["channel"], item["status"]) for item in data["subscriptions"]]
            set_subscriptions(
                actor=request.user,
                contact=contact,
                choices=choices,
                context=consent_context(request, wording_version=data["wording_version"]),
            )
        return Response(SubscriptionSerializer(subscriptions_of(contact), many=True).data)

    @extend_schema(request=UnsubscribeContactSerializer, responses={200: SubscriptionSerializer(many=True), **problems(400, 404)})
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def unsubscribe(self, request: Request, pk: str) -> Response:
        """Withdraw consent for one topic, or every topic, on a channel. Queued marketing
        messages affected are cancelled."""
        contact = self.get_object()
        data = self.parse(request, UnsubscribeContactSerializer)
        unsubscribe_contact(
            actor=request.user, contact=contact, topic=data.get("topic"), channel=data["channel"], context=consent_context(request)
        )
        return Response(SubscriptionSerializer(subscriptions_of(contact), many=True).data)


class UnsubscribeView(APIView):
    """Unsubscribe by address (email or phone): the contact holding it, or — when no contact
    does — a suppression of the address on that channel."""

    capabilities = {"post": policies.can_change_subscriptions}

    @extend_schema(request=UnsubscribeAddressSerializer, responses={200: UnsubscribedSerializer, **problems(400)})
    def post(self, request: Request) -> Response:
        serializer = UnsubscribeAddressSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = unsubscribe_address(
            actor=request.user, address=data["address"], channel=data["channel"], topic=data.get("topic"), context=consent_context(request)
        )
        return Response(UnsubscribedSerializer(result).data)
