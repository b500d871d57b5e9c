"""The console page for sign-up forms: what a marketer edits, the hosted page's address,
the snippet to embed elsewhere and the counts (views, submissions, confirmations)."""

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.translation import gettext_lazy as _

from messaging import site
from messaging.admin.base import AuditedModelAdmin
from messaging.models import SignupForm
from messaging.policies import can_create_signup_forms, can_delete_signup_forms, can_edit_signup_forms, can_view_signup_forms
from messaging.signup.actions import embed_snippet


class SignupFormAdminForm(forms.ModelForm):
    class Meta:
        model = SignupForm
        fields = ("name", "slug", "topics")  # the admin adds the rest from its fieldsets
        error_messages = {
            "slug": {"unique": _("Another sign-up form already uses this address: pick a different one.")},
            "topics": {"required": _("Pick at least one topic: a sign-up form subscribes visitors to the topics it offers.")},
        }


@admin.register(SignupForm)
class SignupFormAdmin(AuditedModelAdmin):
    form = SignupFormAdminForm
    list_display = ("name", "slug", "double_opt_in", "is_active", "views", "submissions", "confirmations")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("topics",)
    readonly_fields = ("hosted_page", "snippet", "views", "submissions", "confirmations")
    fieldsets = (
        (None, {"fields": ("name", "slug", "is_active", "topics", "double_opt_in", "confirmation_template", "wording")}),
        (_("Fields"), {"fields": ("ask_name", "ask_language", "ask_phone")}),
        (_("After posting"), {"fields": ("thank_you_text", "thank_you_url", "confirmed_text", "confirmed_url")}),
        (_("Publish"), {"fields": ("hosted_page", "snippet")}),
        (_("Counts"), {"fields": ("views", "submissions", "confirmations")}),
    )

    @admin.display(description=_("hosted page"))
    def hosted_page(self, obj: SignupForm) -> str:
        if not obj.pk:
            return "—"
        url = site.current().link(reverse("messaging:signup-form", args=[obj.slug]))
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.display(description=_("snippet to embed"))
    def snippet(self, obj: SignupForm) -> str:
        if not obj.pk:
            return _("Save the form first.")
        return format_html(
            '<textarea readonly rows="14" cols="80" class="font-mono text-xs">{}</textarea>', escape(embed_snippet(form=obj))
        )

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return can_view_signup_forms(request.user) or can_edit_signup_forms(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_create_signup_forms(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return can_edit_signup_forms(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return can_delete_signup_forms(request.user)
