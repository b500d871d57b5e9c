"""Audience area: segments. Editing happens in the builder page; the change form only
redirects there, so every change goes through the segment actions."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from marketing.models import Segment, SegmentMember
from marketing.segments.actions import delete_segment
from marketing.views.segments import SegmentBuilderView, SegmentOperationView, SegmentPreviewView, SegmentTreeView
from messaging.admin.base import ReadOnlyAdmin


@admin.register(Segment)
class SegmentAdmin(ModelAdmin):
    list_display = ("name", "kind", "member_count", "refreshed_at", "updated_at", "builder_link")
    list_filter = ("kind",)
    search_fields = ("name", "description")

    @admin.display(description=_("builder"))
    def builder_link(self, obj: Segment) -> str:
        return format_html(
            '<a class="text-primary-600 underline" href="{}">{}</a>',
            reverse("admin:marketing_segment_builder", args=[obj.pk]),
            _("Open builder"),
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        return redirect("admin:marketing_segment_builder_new")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None) -> HttpResponse:
        return redirect("admin:marketing_segment_builder", pk=object_id)

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        delete_segment(segment=obj, actor=request.user)  # campaigns using it need a new approval

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for segment in queryset.order_by("pk"):
            delete_segment(segment=segment, actor=request.user)

    def get_urls(self):
        def view(cls, **kwargs):
            return self.admin_site.admin_view(cls.as_view(model_admin=self, **kwargs))

        return [
            path("builder/", view(SegmentBuilderView), name="marketing_segment_builder_new"),
            path("builder/tree/", view(SegmentTreeView), name="marketing_segment_builder_tree"),
            path("builder/preview/", view(SegmentPreviewView), name="marketing_segment_builder_preview"),
            path("<int:pk>/builder/", view(SegmentBuilderView), name="marketing_segment_builder"),
            path("<int:pk>/builder/<slug:operation>/", view(SegmentOperationView), name="marketing_segment_operation"),
            *super().get_urls(),
        ]


@admin.register(SegmentMember)
class SegmentMemberAdmin(ReadOnlyAdmin):
    list_display = ("segment", "contact", "added_at")
    list_filter = ("segment",)
    search_fields = ("contact__email", "contact__phone")
    list_select_related = ("segment", "contact")
    show_full_result_count = False
