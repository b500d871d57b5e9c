"""Automation console pages, mounted on AutomationAdmin. Thin: parse the form, call an
action, render. The steps editor swaps its list with HTMX (add, remove, move up/down)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from marketing import policies
from marketing.automations.actions import (
    activate_automation,
    add_step,
    create_automation,
    create_automation_from_preset,
    move_step,
    pause_automation,
    remove_step,
    update_automation,
)
from marketing.automations.approval import approve_automation, can_review, reject_automation
from marketing.automations.describe import describe_automation_trigger, describe_exits, describe_step, describe_trigger
from marketing.automations.forms import (
    ExitFormSet,
    FilterFormSet,
    TriggerForm,
    build_exits,
    build_trigger,
    exit_data,
    exit_event_names,
    stored_trigger,
    trigger_data,
)
from marketing.automations.presets import PRESETS
from marketing.automations.properties import presets_properties
from marketing.automations.queries import automation_report, automation_runs
from marketing.automations.status import fans_out
from marketing.models import Automation, AutomationStep
from marketing.review import submission_token
from marketing.tables import AutomationRunTable
from messaging.errors import InvalidInput, MailroomError
from messaging.models import Channel, Template, Topic
from messaging.storable import UnstorableValue, loads_storable
from messaging.tables import EXPORT_PARAM, configure_table, export_csv, export_requested

REPORT_LABELS = {
    "entered": gettext_lazy("Entered"),
    "active": gettext_lazy("In progress"),
    "completed": gettext_lazy("Completed"),
    "exited": gettext_lazy("Exited"),
    "failed": gettext_lazy("Failed"),
    "messages_queued": gettext_lazy("Messages queued"),
    "messages_sent": gettext_lazy("Messages sent"),
    "messages_suppressed": gettext_lazy("Messages suppressed"),
    "messages_cancelled": gettext_lazy("Messages cancelled"),
    "conversions": gettext_lazy("Conversions"),
}


class AutomationPage(UnfoldModelAdminViewMixin, TemplateView):
    permission_required = ("marketing.view_automation",)

    def automation(self) -> Automation:
        return get_object_or_404(Automation, pk=self.kwargs["pk"])

    def require(self, policy) -> None:
        if not policy(self.request.user):
            raise PermissionDenied


def steps_context(automation: Automation, *, error: str = "") -> dict:
    steps = list(automation.steps.order_by("position", "id"))
    return {
        "automation": automation,
        "steps": [{"step": step, "number": n + 1, "summary": describe_step(step.kind, step.config)} for n, step in enumerate(steps)],
        "kinds": AutomationStep.Kind.choices,
        "templates": sorted(set(Template.objects.filter(archived_at__isnull=True).values_list("key", flat=True))),
        "channels": Channel.choices,
        "topics": list(Topic.objects.order_by("position", "name").values_list("key", "name")),
        "step_error": error,
    }


class PresetGalleryView(AutomationPage):
    title = gettext_lazy("Preset gallery")
    template_name = "console/automations/presets.html"

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        properties = presets_properties(list(PRESETS.values()))
        context["presets"] = [
            {"preset": preset, "trigger": describe_trigger(preset.trigger_type, preset.trigger), "uses": properties[preset.key]}
            for preset in PRESETS.values()
        ]
        context["existing"] = dict(Automation.objects.exclude(preset="").values_list("preset", "pk"))
        return context

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        self.require(policies.can_create_automations)
        try:
            if request.POST.get("preset"):
                automation = create_automation_from_preset(actor=request.user, key=request.POST["preset"])
            else:
                automation = create_automation(
                    actor=request.user,
                    name=request.POST.get("name") or _("New automation"),
                    trigger_type="event",
                    trigger={"events": ["*"]},
                )
        except MailroomError as error:
            messages.error(request, str(error))
            return redirect("admin:marketing_automation_presets")
        messages.success(request, _("“%(name)s” created as a draft: check its steps, then activate it.") % {"name": automation.name})
        return redirect("admin:marketing_automation_flow", pk=automation.pk)


class AutomationFlowView(AutomationPage):
    """One automation: state and actions, the steps editor, the report and recent runs."""

    title = gettext_lazy("Automation")
    template_name = "console/automations/flow.html"

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        automation = self.automation()
        # Runs name contacts: only roles that may read run history see (and export) them.
        table = AutomationRunTable(automation_runs(automation=automation)) if policies.can_view_automation_runs(request.user) else None
        if request.GET.get(EXPORT_PARAM):
            if table is None:
                raise PermissionDenied
            if export_requested(request, table):
                return export_csv(request, table, filename=f"automation-{automation.pk}-runs")
        if table is not None:
            configure_table(request, table)
        return self.render_to_response(self.get_context_data(automation=automation, runs=table))

    def get_context_data(self, **kwargs) -> dict:
        automation = kwargs.pop("automation")
        context = super().get_context_data(**kwargs)
        context.update(steps_context(automation))
        context.update(
            report=[(key, REPORT_LABELS.get(key, key), value) for key, value in automation_report(automation=automation).items()],
            trigger_text=describe_automation_trigger(automation),
            exit_texts=describe_exits(automation.exit_events),
            can_edit=policies.can_edit_automations(self.request.user),
            can_activate=policies.can_activate_automations(self.request.user),
            fans_out=fans_out(automation),
            can_review=can_review(self.request.user, automation),
            seen=submission_token(automation.submitted_at),
        )
        return context


class AutomationTriggerView(AutomationPage):
    """The trigger and the exits as a form with choices; saved through `update_automation`
    (a change to a fan-out automation's trigger sends it back for approval)."""

    title = gettext_lazy("Trigger and exits")
    template_name = "console/automations/trigger.html"

    def forms(self, automation: Automation, data=None) -> tuple[TriggerForm, FilterFormSet, ExitFormSet]:
        initial = trigger_data(automation.trigger_type, automation.trigger)
        names = exit_event_names(automation.exit_events)
        # Bound rows get no initial: a posted row equal to its initial would count as
        # unchanged, and an unchanged extra row is dropped as empty.
        bound = data is not None
        return (
            TriggerForm(data, initial=initial, current=initial),
            FilterFormSet(data, initial=None if bound else initial["filters"], prefix="filters"),
            ExitFormSet(
                data, initial=None if bound else exit_data(automation.exit_events), prefix="exits", form_kwargs={"event_names": names}
            ),
        )

    def render(self, automation: Automation, forms, *, status: int = 200) -> HttpResponse:
        trigger_form, filters, exits = forms
        context = self.get_context_data(
            automation=automation,
            form=trigger_form,
            filters=filters,
            exits=exits,
            fans_out=fans_out(automation),
            can_edit=policies.can_edit_automations(self.request.user),
        )
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        automation = self.automation()
        return self.render(automation, self.forms(automation))

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        self.require(policies.can_edit_automations)
        automation = self.automation()
        trigger_form, filters, exits = forms = self.forms(automation, request.POST)
        if not all([trigger_form.is_valid(), filters.is_valid(), exits.is_valid()]):
            return self.render(automation, forms, status=400)
        kind, trigger = build_trigger(trigger_form.cleaned_data | {"filters": filters.cleaned_data})
        exit_events = build_exits(exits.cleaned_data)
        changes = {}
        if (kind, trigger) != stored_trigger(automation):
            changes |= {"trigger_type": kind, "trigger": trigger}
        if exit_events != build_exits(exit_data(automation.exit_events)):
            changes["exit_events"] = exit_events
        if not changes:
            messages.info(request, _("Nothing changed."))
            return redirect("admin:marketing_automation_flow", pk=automation.pk)
        before = automation.state
        try:
            automation = update_automation(actor=request.user, automation=automation, **changes)
        except MailroomError as error:
            trigger_form.add_error(None, str(error))
            return self.render(automation, forms, status=400)
        if before == Automation.State.ACTIVE and automation.state == Automation.State.PENDING_APPROVAL:
            messages.warning(
                request,
                _("Trigger saved. This automation reaches many contacts: it waits for someone else to approve the change."),
            )
        else:
            messages.success(request, _("Trigger saved."))
        return redirect("admin:marketing_automation_flow", pk=automation.pk)


class AutomationStepsView(AutomationPage):
    """HTMX: add / remove / move a step; answers with the steps list partial."""

    template_name = "console/automations/steps.html"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        self.require(policies.can_edit_automations)
        automation = self.automation()
        operation, error = request.POST.get("op", ""), ""
        try:
            if operation == "add":
                add_step(actor=request.user, automation=automation, kind=request.POST.get("kind", ""), config=self._config(request))
            else:
                step = get_object_or_404(AutomationStep, pk=request.POST.get("step"), automation=automation)
                if operation == "remove":
                    remove_step(actor=request.user, step=step)
                elif operation in ("up", "down"):
                    move_step(actor=request.user, step=step, offset=-1 if operation == "up" else 1)
        except MailroomError as error_:
            error = str(error_)
        context = steps_context(automation, error=error) | {"can_edit": True}
        return TemplateResponse(request, self.template_name, context)

    @staticmethod
    def _config(request: HttpRequest) -> dict:
        """The add form: a few plain fields per kind, or raw JSON settings for anything else."""
        kind, post = request.POST.get("kind"), request.POST
        if post.get("config", "").strip():
            try:
                value = loads_storable(post["config"])
            except UnstorableValue as unstorable:  # NUL, unpaired surrogate or absurd nesting
                raise InvalidInput(unstorable.message, fields={"config": [unstorable.message]}) from None
            except ValueError:
                raise InvalidInput(_("The settings are not valid JSON.")) from None
            return value if isinstance(value, dict) else {}
        if kind == "send":
            return {"template": post.get("template", ""), "channel": post.get("channel", "email")}
        if kind in ("subscribe", "unsubscribe"):
            return {"topic": post.get("topic", ""), "channel": post.get("channel", "email")}
        if kind == "wait":
            unit = post.get("unit", "hours") if post.get("unit") in ("minutes", "hours", "days") else "hours"
            try:
                return {unit: float(post.get("amount") or 0)}
            except ValueError:
                return {}
        if kind == "exit":
            return {}
        return {}


class AutomationStateView(AutomationPage):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        self.require(policies.can_activate_automations)
        automation = self.automation()
        try:
            if request.POST.get("to") == "active":
                automation = activate_automation(actor=request.user, automation=automation)
                if automation.state == Automation.State.PENDING_APPROVAL:
                    messages.warning(
                        request,
                        _(
                            "This automation can reach many contacts at once: it waits for someone else to approve it. Nothing is sent until then."
                        ),
                    )
                else:
                    messages.success(request, _("Automation activated."))
            else:
                pause_automation(actor=request.user, automation=automation)
                messages.success(request, _("Automation paused."))
        except MailroomError as error:
            messages.error(request, str(error))
        return redirect("admin:marketing_automation_flow", pk=automation.pk)


class AutomationReviewView(AutomationPage):
    """Approve or reject a fan-out automation waiting for approval (the flow page and the
    approval queue post here); the action enforces four eyes."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        self.require(policies.can_approve_automations)
        if kwargs["operation"] not in ("approve", "reject"):
            raise Http404
        automation = self.automation()
        try:
            if kwargs["operation"] == "approve":
                approve_automation(actor=request.user, automation=automation, seen=request.POST.get("seen"))
                messages.success(request, _("Automation approved: it is active."))
            else:
                reject_automation(actor=request.user, automation=automation, reason=request.POST.get("reason", ""))
                messages.success(request, _("Automation rejected."))
        except MailroomError as error:
            messages.error(request, str(error))
        following = request.POST.get("next", "")
        if following == "approvals":
            return redirect("admin:marketing_campaign_approvals")
        return redirect("admin:marketing_automation_flow", pk=automation.pk)
