"""Templates: list and detail, versions (list, save a new one), activate, deactivate, a
render preview, delete (never sent) or archive (sent), and package export/import (a zip,
messaging.content.packages). Thin: messaging.content.versions holds the rules (syntax checks naming the
line, immutable versions, one active version)."""

import django_filters
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from messaging import policies
from messaging.api.common import ReadViewSet, problems
from messaging.content.packages import MAX_UPLOAD_BYTES, export_filename, export_package, import_package
from messaging.content.retirement import archive_template, delete_template, unarchive_template
from messaging.content.versions import (
    activate_template_version,
    create_template,
    deactivate_template,
    preview_version,
    save_template_version,
    update_template,
)
from messaging.errors import InvalidInput
from messaging.models import Channel, Contact, Template, TemplateVersion, Topic


class TemplateSerializer(serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)
    active_version = serializers.IntegerField(source="active_version.number", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Template
        fields = [
            "id",
            "key",
            "locale",
            "name",
            "category",
            "channel",
            "topic",
            "is_active",
            "active_version",
            "from_catalog",
            "archived_at",
            "created_at",
        ]
        read_only_fields = fields


class TemplateInputSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=100)
    name = serializers.CharField(max_length=200)
    locale = serializers.CharField(default="en")
    category = serializers.ChoiceField(choices=Template.Category.choices, default=Template.Category.TRANSACTIONAL)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.EMAIL)
    topic = serializers.SlugRelatedField(slug_field="key", queryset=Topic.objects.all(), required=False, allow_null=True)


class TemplateUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    category = serializers.ChoiceField(choices=Template.Category.choices, required=False)
    topic = serializers.SlugRelatedField(slug_field="key", queryset=Topic.objects.all(), required=False, allow_null=True)


class VersionSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = TemplateVersion
        fields = ["id", "number", "subject", "preheader", "body_format", "body", "text_body", "sms_body", "note", "author", "created_at"]
        read_only_fields = fields


class VersionInputSerializer(serializers.Serializer):
    subject = serializers.CharField(required=False, allow_blank=True, default="")
    preheader = serializers.CharField(required=False, allow_blank=True, default="")
    body_format = serializers.ChoiceField(choices=TemplateVersion.Format.choices, default=TemplateVersion.Format.MJML)
    body = serializers.CharField(required=False, allow_blank=True, default="")
    text_body = serializers.CharField(required=False, allow_blank=True, default="")
    sms_body = serializers.CharField(required=False, allow_blank=True, default="")
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ActivateSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The version number to make active.")


class PreviewInputSerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, help_text="Default: the active version, else the latest.")
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.active(), required=False, allow_null=True)
    context = serializers.DictField(required=False, default=dict, help_text="Extra template variables (plain data).")


class PreviewSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    subject = serializers.CharField()
    preheader = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()
    sms = serializers.CharField()
    missing = serializers.ListField(child=serializers.CharField(), help_text="Variables the template asked for and did not get.")


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A template package zip (see README, Templates).")
    dry_run = serializers.BooleanField(default=False, help_text="Check everything and say what would change; write nothing.")
    activate = serializers.BooleanField(default=False, help_text="Activate the new versions of existing templates too.")


class ImportChangeSerializer(serializers.Serializer):
    key = serializers.CharField()
    locale = serializers.CharField()
    action = serializers.ChoiceField(choices=["create", "new version", "unchanged"])
    version = serializers.IntegerField(allow_null=True)
    file = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    changes = ImportChangeSerializer(many=True)


class TemplateFilter(django_filters.FilterSet):
    topic = django_filters.CharFilter(field_name="topic__key")
    archived = django_filters.BooleanFilter(field_name="archived_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Template
        fields = ["key", "locale", "channel", "category", "is_active"]


class TemplateViewSet(ReadViewSet):
    queryset = Template.objects.select_related("topic", "active_version")
    serializer_class = TemplateSerializer
    filterset_class = TemplateFilter
    search_fields = ["key", "name"]
    ordering_fields = ["id", "key", "name", "created_at"]
    ordering = ["key", "locale"]
    capabilities = {
        "list": policies.can_view_templates,
        "retrieve": policies.can_view_templates,
        "create": policies.can_create_templates,
        "partial_update": policies.can_edit_templates,
        "versions:get": policies.can_view_template_versions,
        "versions:post": policies.can_edit_templates,
        "activate": policies.can_edit_templates,
        "deactivate": policies.can_edit_templates,
        "preview": policies.can_view_templates,
        "destroy": policies.can_delete_templates,
        "archive": policies.can_archive_templates,
        "unarchive": policies.can_archive_templates,
        "export": policies.can_export_templates,
        "package_import": policies.can_import_templates,
    }

    @extend_schema(request=TemplateInputSerializer, responses={201: TemplateSerializer, **problems(400)})
    def create(self, request: Request) -> Response:
        data = self.parse(request, TemplateInputSerializer)
        template = create_template(actor=request.user, **data)
        return Response(TemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TemplateUpdateSerializer, responses={200: TemplateSerializer, **problems(400, 404)})
    def partial_update(self, request: Request, pk: str) -> Response:
        """Rename, or change the category or topic; the content changes through `versions`."""
        template = update_template(actor=request.user, template=self.get_object(), **self.parse(request, TemplateUpdateSerializer))
        return Response(TemplateSerializer(template).data)

    @extend_schema(methods=["get"], responses={200: VersionSerializer(many=True), **problems(404)})
    @extend_schema(
        methods=["post"],
        request=VersionInputSerializer,
        responses={
            201: VersionSerializer,
            200: OpenApiResponse(VersionSerializer, description="Same content as the latest version: that version."),
            **problems(400, 404),
        },
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def versions(self, request: Request, pk: str) -> Response:
        """Versions, newest first. POST saves the content as a new draft version (checked and
        compiled; a syntax error names its line); activate it separately."""
        template = self.get_object()
        if request.method == "POST":
            data = self.parse(request, VersionInputSerializer)
            latest = template.versions.order_by("-number").values_list("number", flat=True).first()
            version = save_template_version(actor=request.user, template=template, **data)
            code = status.HTTP_200_OK if version.number == latest else status.HTTP_201_CREATED
            return Response(VersionSerializer(version).data, status=code)
        page = self.paginate_queryset(template.versions.select_related("author").order_by("-number"))
        return self.get_paginated_response(VersionSerializer(page, many=True).data)

    @extend_schema(request=ActivateSerializer, responses={200: TemplateSerializer, **problems(400, 404)})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        """Make a version the one that is sent."""
        template = self.get_object()
        number = self.parse(request, ActivateSerializer)["version"]
        template = activate_template_version(actor=request.user, version=self._version(template, number))
        return Response(TemplateSerializer(template).data)

    @extend_schema(request=None, responses={200: TemplateSerializer, **problems(404)})
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str) -> Response:
        template = deactivate_template(actor=request.user, template=self.get_object())
        return Response(TemplateSerializer(template).data)

    @extend_schema(request=PreviewInputSerializer, responses={200: PreviewSerializer, **problems(400, 404)})
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str) -> Response:
        """Render a version with sample merge-tag values (or a contact's), sending nothing."""
        template = self.get_object()
        data = self.parse(request, PreviewInputSerializer)
        if data.get("version"):
            version = self._version(template, data["version"])
        else:
            version = template.active_version or template.versions.order_by("-number").first()
            if version is None:
                raise InvalidInput(_("This template has no version yet."), fields={"version": [_("No version yet.")]})
        rendered = preview_version(version=version, contact=data.get("contact"), context=data["context"])
        body = {
            "version": version.number,
            "subject": rendered.subject,
            "preheader": rendered.preheader,
            "html": rendered.html,
            "text": rendered.text,
            "sms": rendered.sms,
            "missing": rendered.missing,
        }
        return Response(PreviewSerializer(body).data)

    @extend_schema(request=None, responses={204: None, **problems(404, 409)})
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete a template (one language) never sent. One that was sent is a 409: archive it."""
        delete_template(actor=request.user, template=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: TemplateSerializer, **problems(404)})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str) -> Response:
        """Hide the template from pickers and stop sending it; its history and reports stay."""
        template = archive_template(actor=request.user, template=self.get_object())
        return Response(TemplateSerializer(template).data)

    @extend_schema(request=None, responses={200: TemplateSerializer, **problems(404)})
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, pk: str) -> Response:
        """Back in the pickers; activate a version to send it again."""
        template = unarchive_template(actor=request.user, template=self.get_object())
        return Response(TemplateSerializer(template).data)

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY, **problems(404)})
    @action(detail=True, methods=["get"], filter_backends=[])
    def export(self, request: Request, pk: str) -> HttpResponse:
        """The template's key with every language as a package zip (the catalog's layout)."""
        template = self.get_object()
        response = HttpResponse(export_package([template]), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export_filename([template])}"'
        return response

    @extend_schema(
        request={"multipart/form-data": ImportInputSerializer},
        responses={
            201: ImportReportSerializer,
            200: OpenApiResponse(ImportReportSerializer, description="A dry run: what would change."),
            **problems(400),
        },
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser], filter_backends=[])
    def package_import(self, request: Request) -> Response:
        """Load a package zip: new keys become templates, existing ones get a new version per
        changed language. Any error names its file and nothing is written."""
        data = self.parse(request, ImportInputSerializer)
        upload = data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise InvalidInput(
                _("The package is larger than %(max)s MB.") % {"max": MAX_UPLOAD_BYTES / 2**20}, fields={"file": [_("Too large.")]}
            )
        report = import_package(
            actor=request.user, data=upload.read(), name=upload.name, dry_run=data["dry_run"], activate=data["activate"]
        )
        body = ImportReportSerializer({"dry_run": report.dry_run, "changes": report.changes}).data
        return Response(body, status=status.HTTP_200_OK if report.dry_run else status.HTTP_201_CREATED)

    @staticmethod
    def _version(template: Template, number: int) -> TemplateVersion:
        version = template.versions.filter(number=number).first()
        if version is None:
            raise InvalidInput(_("This template has no version %(n)s.") % {"n": number}, fields={"version": [_("No such version.")]})
        return version
