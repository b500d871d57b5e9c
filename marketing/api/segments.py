"""Segments: CRUD, refresh, preview of rules and the members list (seed 003's API).

Thin: the segment actions validate names and rules (a bad rule is a 400 naming it)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from marketing import policies
from marketing.models import Segment
from marketing.segments.actions import (
    add_static_members,
    create_segment,
    delete_segment,
    preview_rules,
    refresh_segment,
    segment_contacts,
    update_segment,
)
from messaging.api.common import ReadViewSet, problems
from messaging.api.contacts import ContactSerializer


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["id", "name", "description", "kind", "rules", "member_count", "refreshed_at", "created_at", "updated_at"]
        read_only_fields = fields


class SegmentInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=150)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Segment.Kind.choices, required=False, default=Segment.Kind.DYNAMIC)
    rules = serializers.JSONField(required=False, help_text='A rule tree: {"type": "group", "op": "and", "rules": [...]}')


class RulesSerializer(serializers.Serializer):
    rules = serializers.JSONField()


class SegmentPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = ContactSerializer(many=True)


class MembersInputSerializer(serializers.Serializer):
    contacts = serializers.ListField(child=serializers.CharField(), max_length=100_000, help_text="Emails, phones or external ids.")


class SegmentViewSet(ReadViewSet):
    """Static and dynamic segments. A dynamic segment's members are materialised by
    `refresh` (and nightly at 02:00); `contacts` lists the materialised members."""

    queryset = Segment.objects.order_by("name")
    serializer_class = SegmentSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "member_count", "refreshed_at", "created_at"]
    filterset_fields = ["kind"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    capabilities = {
        "list": policies.can_view_segments,
        "retrieve": policies.can_view_segments,
        "create": policies.can_create_segments,
        "partial_update": policies.can_edit_segments,
        "destroy": policies.can_delete_segments,
        "refresh": policies.can_refresh_segments,
        "contacts": policies.can_view_segments,
        "preview": policies.can_view_segments,
        "members": policies.can_edit_segments,
    }

    @extend_schema(request=SegmentInputSerializer, responses={201: SegmentSerializer, **problems(400)})
    def create(self, request: Request) -> Response:
        data = self.parse(request, SegmentInputSerializer)
        segment = create_segment(
            name=data.get("name", ""),
            description=data.get("description", ""),
            kind=data["kind"],
            rules=data.get("rules"),
            actor=request.user,
        )
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SegmentInputSerializer, responses={200: SegmentSerializer, **problems(400, 404)})
    def partial_update(self, request: Request, pk: str) -> Response:
        data = self.parse(request, SegmentInputSerializer)
        segment = update_segment(
            segment=self.get_object(),
            name=data.get("name"),
            description=data.get("description"),
            rules=data.get("rules"),
            actor=request.user,
        )
        return Response(SegmentSerializer(segment).data)

    @extend_schema(request=None, responses={204: None, **problems(404, 409)})
    def destroy(self, request: Request, pk: str) -> Response:
        delete_segment(segment=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: SegmentSerializer, **problems(404)})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str) -> Response:
        """Materialise the members now (the nightly refresh does it at 02:00)."""
        return Response(SegmentSerializer(refresh_segment(segment=self.get_object(), actor=request.user)).data)

    @extend_schema(responses={200: ContactSerializer(many=True), **problems(404)})
    @action(detail=True, methods=["get"], search_fields=["email", "phone", "external_id"], ordering_fields=["id"], filterset_fields=[])
    def contacts(self, request: Request, pk: str) -> Response:
        """The segment's materialised members (refresh first for the latest)."""
        contacts = self.filter_queryset(segment_contacts(segment=self.get_object()).order_by("id"))
        page = self.paginate_queryset(contacts)
        return self.get_paginated_response(ContactSerializer(page, many=True).data)

    @extend_schema(request=RulesSerializer, responses={200: SegmentPreviewSerializer, **problems(400)})
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])
    def preview(self, request: Request) -> Response:
        """Count and sample the contacts a rule tree matches, without saving anything."""
        result = preview_rules(rules=self.parse(request, RulesSerializer)["rules"])
        return Response({"count": result.count, "sample": ContactSerializer(result.sample, many=True).data})

    @extend_schema(request=MembersInputSerializer, responses={200: SegmentSerializer, **problems(400, 404)})
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def members(self, request: Request, pk: str) -> Response:
        """Add contacts to a static segment; `unknown` lists identifiers no contact has."""
        added, unknown = add_static_members(
            segment=self.get_object(), identifiers=self.parse(request, MembersInputSerializer)["contacts"], actor=request.user
        )
        segment = Segment.objects.get(pk=pk)
        return Response({**SegmentSerializer(segment).data, "added": added, "unknown": unknown})
