"""Automations area: the list, the settings form (saved through the actions), the flow page
(steps editor, activate / pause, report, recent runs), the preset gallery and run history."""

from django import forms
from django.contrib import admin, messages
from django.db.models import CharField, OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline

from marketing import policies
from marketing.automations.actions import EDITABLE, update_automation
from marketing.automations.describe import describe_automation_trigger, describe_exits
from marketing.models import Automation, AutomationRun, AutomationStepLog, PaymentWebhookEvent, Segment
from marketing.views.automations import (
    AutomationFlowView,
    AutomationReviewView,
    AutomationStateView,
    AutomationStepsView,
    AutomationTriggerView,
    PresetGalleryView,
)
from messaging.admin.base import ReadOnlyAdmin
from messaging.errors import MailroomError

# The trigger and the exits have their own page (a form with choices, AutomationTriggerView).
TRIGGER_FIELDS = ("trigger_type", "trigger", "exit_events")


class AutomationForm(forms.ModelForm):
    class Meta:
        model = Automation
        fields = [name for name in EDITABLE if name not in TRIGGER_FIELDS]


@admin.register(Automation)
class AutomationAdmin(ModelAdmin):
    form = AutomationForm
    list_display = ("name", "state_badge", "trigger_text", "is_transactional", "preset", "updated_at", "flow_link")
    list_filter = ("state", "trigger_type", "is_transactional")
    search_fields = ("name", "description")
    fieldsets = (
        (None, {"fields": ("name", "description")}),
        (_("Trigger"), {"fields": ("trigger_text", "exit_text", "audience", "reentry")}),
        (
            _("Sending rules"),
            {"fields": ("is_transactional", "quiet_hours_start", "quiet_hours_end", "frequency_cap", "frequency_window_hours")},
        ),
        (_("Report"), {"fields": ("conversion_event", "conversion_window_days")}),
    )

    readonly_fields = ("trigger_text", "exit_text")

    def get_queryset(self, request: HttpRequest):
        """The entry segment's name for the trigger sentence, in the same query."""
        # compared as text: a stray non-number under "segment" must not break the list on PostgreSQL
        segment = Segment.objects.annotate(key=Cast("pk", CharField())).filter(key=KeyTextTransform("segment", OuterRef("trigger")))
        return super().get_queryset(request).annotate(entry_segment_name=Subquery(segment.values("name")[:1]))

    @admin.display(description=_("trigger"), ordering="trigger_type")
    def trigger_text(self, obj: Automation) -> str:
        if obj.pk is None:
            return "—"
        return format_html(
            '{} <a class="text-primary-600 underline" href="{}">{}</a>',
            describe_automation_trigger(obj),
            reverse("admin:marketing_automation_trigger", args=[obj.pk]),
            _("Change"),
        )

    @admin.display(description=_("exits"))
    def exit_text(self, obj: Automation) -> str:
        texts = describe_exits(obj.exit_events)
        if not texts:
            return _("None: a run ends after its last step.")
        return format_html_join(mark_safe("<br>"), "{}", ((text,) for text in texts))

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj: Automation) -> str:
        colours = {
            "active": "bg-green-100 text-green-700",
            "pending": "bg-blue-100 text-blue-700",
            "paused": "bg-orange-100 text-orange-700",
            "draft": "bg-base-100 text-base-700",
        }
        return format_html(
            '<span class="px-2 py-1 rounded-default text-xs font-semibold {}" data-testid="state-{}">{}</span>',
            colours.get(obj.state, ""),
            obj.pk,
            obj.get_state_display(),
        )

    @admin.display(description=_("flow"))
    def flow_link(self, obj: Automation) -> str:
        return format_html(
            '<a class="text-primary-600 underline" href="{}">{}</a>',
            reverse("admin:marketing_automation_flow", args=[obj.pk]),
            _("Steps & report"),
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        return redirect("admin:marketing_automation_presets")

    def save_model(self, request: HttpRequest, obj: Automation, form, change: bool) -> None:
        """Through the action, so the rules and the audit entry are the API's too."""
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE}
        try:
            updated = update_automation(actor=request.user, automation=Automation.objects.get(pk=obj.pk), **fields)
        except MailroomError as error:
            messages.error(request, str(error))
            obj.refresh_from_db()
            return
        obj.__dict__.update(updated.__dict__)

    def has_delete_permission(self, request: HttpRequest, obj: Automation | None = None) -> bool:
        return policies.can_delete_automations(request.user) and (obj is None or obj.state != Automation.State.ACTIVE)

    def get_urls(self):
        def view(cls, **kwargs):
            return self.admin_site.admin_view(cls.as_view(model_admin=self, **kwargs))

        return [
            path("presets/", view(PresetGalleryView), name="marketing_automation_presets"),
            path("<int:pk>/flow/", view(AutomationFlowView), name="marketing_automation_flow"),
            path("<int:pk>/flow/steps/", view(AutomationStepsView), name="marketing_automation_steps"),
            path("<int:pk>/flow/trigger/", view(AutomationTriggerView), name="marketing_automation_trigger"),
            path("<int:pk>/flow/state/", view(AutomationStateView), name="marketing_automation_state"),
            path("<int:pk>/flow/review/<slug:operation>/", view(AutomationReviewView), name="marketing_automation_review"),
            *super().get_urls(),
        ]


class StepLogInline(TabularInline):
    model = AutomationStepLog
    fields = ("created_at", "step_number", "kind", "outcome", "detail", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "id")

    @admin.display(description=_("step"))
    def step_number(self, obj: AutomationStepLog) -> int:
        return obj.step_index + 1

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(AutomationRun)
class AutomationRunAdmin(ReadOnlyAdmin):
    """Run history: search a contact to see every flow they went through, step by step."""

    list_display = ("automation", "contact", "status", "next_step", "next_run_at", "started_at", "ended_at", "exit_reason")
    list_filter = ("status", "automation")
    search_fields = ("contact__email", "contact__phone", "contact__external_id", "trigger_key")
    list_select_related = ("automation", "contact")
    show_full_result_count = False
    inlines = [StepLogInline]
    fields = (
        "automation",
        "contact",
        "trigger_key",
        "trigger_event",
        "status",
        "next_step_index",
        "next_run_at",
        "started_at",
        "ended_at",
        "exit_reason",
        "context",
    )
    readonly_fields = fields

    @admin.display(description=_("next step"))
    def next_step(self, obj: AutomationRun) -> str:
        return str(obj.next_step_index + 1) if obj.status == AutomationRun.Status.ACTIVE else "—"

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return policies.can_view_automation_runs(request.user)


@admin.register(PaymentWebhookEvent)
class PaymentWebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "provider", "type", "order_id", "received_at")
    list_filter = ("provider", "type")
    search_fields = ("event_id", "order_id")
    readonly_fields = ("provider", "event_id", "type", "order_id", "payload", "received_at")
