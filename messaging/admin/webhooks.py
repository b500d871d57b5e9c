"""Settings area of the console: outbound webhook endpoints and their delivery log.

"Add webhook endpoint" creates it through `create_endpoint` and shows the signing secret once
on the next page; it is never shown again (only a sealed copy is stored). An endpoint turned
off after repeated failures is announced on the list. The delivery log is read-only; "Replay"
(a POST, after a confirmation page) sends deliveries again under the same webhook-id.
"""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget

from messaging import policies, queries
from messaging.admin.base import SUBMISSION_FIELD, ReadOnlyInline, add_once, shown_once, submission_field
from messaging.errors import InvalidInput
from messaging.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from messaging.paging import CappedCountPaginator
from messaging.webhooks.emit import shown_body
from messaging.webhooks.endpoints import change_endpoint, clean_endpoint_fields, create_endpoint, delete_endpoint, replay_delivery
from messaging.webhooks.events import event_type_choices


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(label=capfirst(_("event types")), widget=UnfoldAdminCheckboxSelectMultipleWidget)
    submission = submission_field()  # a reload of the secret's page makes no second endpoint

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "event_types", "is_active")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = event_type_choices()

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        try:
            clean_endpoint_fields(name=data.get("name", ""), url=data.get("url", ""), event_types=data.get("event_types") or [])
        except InvalidInput as error:
            for field, texts in error.fields.items():
                self.add_error(field if field in self.fields else None, texts)
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "url", "is_active", "consecutive_failures", "disabled_at", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "url")
    fields = ("name", "url", "event_types", "is_active")
    readonly_fields = ("consecutive_failures", "disabled_at", "disabled_reason", "created_by", "created_at")

    def get_fields(self, request: HttpRequest, obj=None):
        return (*self.fields, SUBMISSION_FIELD) if obj is None else (*self.fields, *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return () if obj is None else self.readonly_fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policies.can_view_webhooks(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return policies.can_view_webhooks(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return policies.can_create_webhooks(request.user)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return policies.can_change_webhooks(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return policies.can_delete_webhooks(request.user)

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        for endpoint in queries.webhook_endpoints_turned_off().only("name", "disabled_reason"):
            messages.warning(
                request,
                _("The webhook endpoint “%(name)s” was turned off: %(reason)s Fix the receiver, then make it active again.")
                % {"name": endpoint.name, "reason": endpoint.disabled_reason},
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form, change: bool) -> None:
        values = {field: form.cleaned_data[field] for field in ("name", "url", "event_types", "is_active")}
        if change:
            change_endpoint(actor=request.user, endpoint=obj, **values)
            return
        created = create_endpoint(actor=request.user, **values)
        obj.pk = created.endpoint.pk
        obj._state.adding = False
        request._mailroom_webhook_secret = created.secret  # shown once, by response_add
        request._mailroom_created_pk = obj.pk

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        def again(pk: int | None) -> HttpResponse:
            endpoint = WebhookEndpoint.objects.filter(pk=pk).first() if pk else None
            return shown_once(
                self, request, "console/webhook_endpoint_created.html", title=_("Webhook endpoint created"), endpoint=endpoint, secret=None
            )

        return add_once(self, request, lambda: super(WebhookEndpointAdmin, self).add_view(request, form_url, extra_context), again=again)

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue=None) -> HttpResponse:
        return shown_once(
            self,
            request,
            "console/webhook_endpoint_created.html",
            title=_("Webhook endpoint created"),
            endpoint=obj,
            secret=request._mailroom_webhook_secret,
        )

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        delete_endpoint(actor=request.user, endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for endpoint in queryset:
                delete_endpoint(actor=request.user, endpoint=endpoint)


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = ("attempted_at", "status_code", "error", "duration_ms")
    readonly_fields = fields
    ordering = ("-id",)


class EventTypeFilter(admin.SimpleListFilter):
    title = _("event type")
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin) -> list:
        return event_type_choices()

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(event_type=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    paginator = CappedCountPaginator
    list_display = ("webhook_id", "endpoint", "event_type", "status", "attempts", "last_status_code", "created_at", "delivered_at")
    # The event types are the registered ones: no SELECT DISTINCT over a log that only grows.
    list_filter = ("status", EventTypeFilter, "endpoint")
    search_fields = ("webhook_id",)
    list_select_related = ("endpoint",)
    fields = (
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
        "shown_body",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["replay"]
    show_full_result_count = False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policies.can_view_webhook_deliveries(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return policies.can_view_webhook_deliveries(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return policies.can_replay_webhooks(request.user)

    @admin.display(description=_("body"))
    def shown_body(self, obj: WebhookDelivery) -> str:
        return shown_body(obj)  # a sealed body (it carries a secret) is never shown

    @admin.action(description=_("Replay (send again with the same webhook-id)"), permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "console/confirm_action.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("Replay these webhook deliveries?"),
                    "warning": _("Each receiver gets the same event again, with the same webhook-id."),
                    "objects": queryset.select_related("endpoint"),
                    "action": "replay",
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        count = 0
        for delivery in queryset:
            replay_delivery(actor=request.user, delivery=delivery)
            count += 1
        messages.success(request, ngettext("%d delivery will be sent again.", "%d deliveries will be sent again.", count) % count)
        return None
