"""Settings area of the console: API keys for integrations.

"Add API key" creates the key through `create_api_key` and shows the secret once on the
next page; it is never shown again (only its hash is stored). Revoking is a bulk action
(a POST) through `revoke_api_key`."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RelatedDropdownFilter

from messaging import policies
from messaging.admin.base import SUBMISSION_FIELD, add_once, shown_once, submission_field
from messaging.api_keys import create_api_key, normalise_rate, revoke_api_key
from messaging.models import ApiKey


class ApiKeyForm(forms.ModelForm):
    submission = submission_field()  # a reload of the secret's page makes no second key

    class Meta:
        model = ApiKey
        fields = ("name", "role", "rate")

    def clean_rate(self) -> str:
        return normalise_rate(self.cleaned_data.get("rate"))


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "prefix", "role", "active_label", "rate", "last_used_at", "created_by", "created_at", "revoked_at")
    list_filter = (("role", RelatedDropdownFilter), ("revoked_at", admin.EmptyFieldListFilter))
    list_filter_submit = True
    search_fields = ("name", "prefix")
    list_select_related = ("role", "created_by")
    fields = ("name", "role", "rate")
    readonly_fields = ("prefix", "user", "created_by", "created_at", "last_used_at", "revoked_at", "revoked_by")
    actions = ["revoke_keys"]

    def get_fields(self, request: HttpRequest, obj=None):
        return (*self.fields, SUBMISSION_FIELD) if obj is None else (*self.fields, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return () if obj is None else (*self.fields, *self.readonly_fields)

    @admin.display(description=_("active"), boolean=True)
    def active_label(self, obj: ApiKey) -> bool:
        return obj.is_active

    def has_add_permission(self, request: HttpRequest) -> bool:
        return policies.can_create_api_keys(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a key is created and revoked, never edited

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # revoke instead: the audit trail keeps pointing at the key

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return policies.can_revoke_api_keys(request.user)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        created = create_api_key(actor=request.user, name=obj.name, role=obj.role, rate=obj.rate)
        obj.pk, obj.prefix, obj.user_id = created.key.pk, created.key.prefix, created.key.user_id
        obj._state.adding = False
        request._mailroom_api_token = created.token  # shown once, by response_add
        request._mailroom_created_pk = obj.pk

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        def again(pk: int | None) -> HttpResponse:
            key = ApiKey.objects.filter(pk=pk).first() if pk else None
            return shown_once(self, request, "console/api_key_created.html", title=_("API key created"), key=key, token=None)

        return add_once(self, request, lambda: super(ApiKeyAdmin, self).add_view(request, form_url, extra_context), again=again)

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None) -> HttpResponse:
        return shown_once(
            self, request, "console/api_key_created.html", title=_("API key created"), key=obj, token=request._mailroom_api_token
        )

    @admin.action(description=_("Revoke"), permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for key in queryset.filter(revoked_at__isnull=True):
            revoke_api_key(actor=request.user, key=key)
            count += 1
        messages.success(request, ngettext("%d key revoked.", "%d keys revoked.", count) % count)
