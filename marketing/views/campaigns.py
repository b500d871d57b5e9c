"""Campaign pages mounted on CampaignAdmin: the create/edit wizard, the overview with its
dry run and state buttons, the transition endpoint and the report. Thin: parse, call an
action, render. Every view checks its policy function; the sidebar only hides links."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View
from unfold.views import UnfoldModelAdminViewMixin

from marketing.analytics import charts as analytics_charts
from marketing.campaigns import actions, policies, queries, states
from marketing.campaigns.languages import language_rows, language_warnings
from marketing.campaigns.preview import dry_run
from marketing.forms import CampaignForm, RejectForm
from marketing.models import Campaign, CampaignRecipient
from marketing.review import submission_token
from marketing.tables import CampaignRecipientTable
from messaging.errors import MailroomError
from messaging.models import AuditEntry
from messaging.money import format_money
from messaging.tables import configure_table, export_csv, export_requested

State = Campaign.State


class CampaignPage(UnfoldModelAdminViewMixin, TemplateView):
    permission_required = ("marketing.view_campaign",)

    def campaign(self) -> Campaign:
        return get_object_or_404(Campaign.objects.select_related("topic", "created_by", "template_version__template"), pk=self.kwargs["pk"])


class CampaignWizardView(CampaignPage):
    """Create or edit in steps (basics, audience, content, schedule, A/B, guardrails)."""

    title = gettext_lazy("Campaign")
    template_name = "console/campaigns/wizard.html"
    permission_required = ("marketing.add_campaign",)

    def existing(self) -> Campaign | None:
        return self.campaign() if "pk" in self.kwargs else None

    def get_context_data(self, **kwargs) -> dict:
        campaign = self.existing()
        if campaign is not None and not policies.can_edit_campaign(self.request.user):
            raise PermissionDenied
        form = kwargs.pop("form", None) or CampaignForm(initial=CampaignForm.initial_for(campaign) if campaign else None)
        context = super().get_context_data(**kwargs)
        context.update(campaign=campaign, form=form, title=_("Edit campaign") if campaign else _("New campaign"))
        return context

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        campaign = self.existing()
        if campaign is not None and not policies.can_edit_campaign(request.user):
            raise PermissionDenied
        form = CampaignForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        values = form.campaign_values()
        try:
            if campaign is None:
                campaign = actions.create_campaign(actor=request.user, **values)
                messages.success(request, _("Draft saved. Check the dry run, then submit it for approval."))
            else:
                was = campaign.state
                campaign = actions.update_campaign(actor=request.user, campaign=campaign, **values)
                messages.success(request, _("Campaign saved."))
                if was != campaign.state and campaign.state == State.DRAFT:
                    messages.warning(request, _("The campaign changed after submission: it is a draft again and needs a new approval."))
        except MailroomError as error:
            on_fields = {field: errors for field, errors in error.fields.items() if field in form.fields}
            for field, errors in error.fields.items():
                if field in form.fields or not on_fields:  # an error the form shows next to its field is not repeated
                    form.add_error(field if field in form.fields else None, errors)
            if not error.fields:
                form.add_error(None, str(error))
            return self.render_to_response(self.get_context_data(form=form))
        for warning in language_warnings(campaign)[2]:  # a warning, not an error: the fallback language is sent
            messages.warning(request, warning)
        return redirect("admin:marketing_campaign_overview", pk=campaign.pk)


class CampaignOverviewView(CampaignPage):
    title = gettext_lazy("Campaign")
    template_name = "console/campaigns/overview.html"

    def get_context_data(self, **kwargs) -> dict:
        campaign = self.campaign()
        context = super().get_context_data(**kwargs)
        context.update(
            campaign=campaign,
            title=campaign.name,
            buttons=states.buttons_for(campaign, self.request.user),
            seen=submission_token(campaign.submitted_at),
            can_edit=states.may_edit(campaign, self.request.user),
            can_report=policies.can_view_report(self.request.user),
            can_reject=states.may_reject(campaign, self.request.user),
            variants=campaign.variants.select_related("template_version__template"),
            segments=campaign.segments.all(),
            excluded=campaign.excluded_segments.all(),
            history=AuditEntry.objects.filter(target_type="marketing.campaign", target_id=str(campaign.pk)).select_related("actor")[:30],
            reject_form=RejectForm(),
            fanout_progress=queries.fanout_progress(campaign),
            send_progress=queries.send_progress(campaign),
            languages=language_rows(campaign),
        )
        return context


class CampaignProgressView(CampaignPage):
    """HTMX partial polled while the campaign sends: sent/total with a bar. Once it has left
    "sending" (sent, paused, cancelled), an HTMX request gets HX-Refresh, so the whole page
    (state, buttons, report figures) is reloaded once and the polling stops."""

    title = gettext_lazy("Progress")

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = self.campaign()
        response = TemplateResponse(
            request,
            "console/campaigns/_progress.html",
            {"campaign": campaign, "send_progress": queries.send_progress(campaign), "fanout_progress": queries.fanout_progress(campaign)},
        )
        if request.headers.get("HX-Request") and campaign.state != State.SENDING:
            response["HX-Refresh"] = "true"
        return response


class CampaignDryRunView(CampaignPage):
    """HTMX partial: counts and sample renders, computed now, nothing written."""

    title = gettext_lazy("Dry run")

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = self.campaign()
        return TemplateResponse(request, "console/campaigns/dry_run.html", {"campaign": campaign, "result": dry_run(campaign=campaign)})


# The flash message of each move: lazy, so it is translated per request (in the person's
# language), not once at import.
TRANSITION_ACTIONS = {
    "submit": (
        policies.can_edit_campaign,
        lambda r, c: actions.submit_campaign(actor=r.user, campaign=c),
        gettext_lazy("Submitted for approval."),
    ),
    "approve": (
        policies.can_approve_campaign,
        lambda r, c: actions.approve_campaign(actor=r.user, campaign=c, seen=r.POST.get("seen")),
        gettext_lazy("Campaign approved."),
    ),
    "reject": (None, None, gettext_lazy("Campaign rejected.")),
    "schedule": (
        policies.can_send_campaign,
        lambda r, c: actions.schedule_campaign(actor=r.user, campaign=c),
        gettext_lazy("Campaign scheduled."),
    ),
    "pause": (policies.can_send_campaign, lambda r, c: actions.pause_campaign(actor=r.user, campaign=c), gettext_lazy("Campaign paused.")),
    "resume": (
        policies.can_send_campaign,
        lambda r, c: actions.resume_campaign(actor=r.user, campaign=c),
        gettext_lazy("Campaign resumed."),
    ),
    "cancel": (
        policies.can_send_campaign,
        lambda r, c: actions.cancel_campaign(actor=r.user, campaign=c),
        gettext_lazy("Campaign cancelled."),
    ),
    "reopen": (
        policies.can_edit_campaign,
        lambda r, c: actions.reopen_campaign(actor=r.user, campaign=c),
        gettext_lazy("The campaign is a draft again."),
    ),
}


class CampaignTransitionView(UnfoldModelAdminViewMixin, View):
    """POST only (CSRF-checked): one state change through its action."""

    title = gettext_lazy("Campaign")
    permission_required = ("marketing.view_campaign",)

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return HttpResponseNotAllowed(["POST"])

    def post(self, request: HttpRequest, pk: int, name: str) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=pk)
        if name not in TRANSITION_ACTIONS:
            return HttpResponse(status=404)
        policy, call, done = TRANSITION_ACTIONS[name]
        if name == "reject":
            if not policies.can_approve_campaign(request.user):
                raise PermissionDenied
            form = RejectForm(request.POST)
            if not form.is_valid():
                messages.error(request, _("Say why the campaign is rejected."))
                return self._back(request, campaign)
            call = lambda r, c: actions.reject_campaign(actor=r.user, campaign=c, reason=form.cleaned_data["reason"])  # noqa: E731
        elif not policy(request.user):
            raise PermissionDenied
        try:
            call(request, campaign)
        except (MailroomError, PermissionDenied) as error:
            messages.error(request, str(error))
        else:
            messages.success(request, done)
        return self._back(request, campaign)

    def _back(self, request: HttpRequest, campaign: Campaign) -> HttpResponse:
        target = request.POST.get("next", "")
        if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            return redirect(target)
        return redirect("admin:marketing_campaign_overview", pk=campaign.pk)


class CampaignRecipientsView(CampaignPage):
    """Who the campaign went to: each recipient's status, skip reason, variant and message."""

    title = gettext_lazy("Recipients")
    template_name = "console/campaigns/recipients.html"
    per_page = 50

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        campaign = self.campaign()
        status = request.GET.get("status", "")
        if status not in queries.RECIPIENT_STATUSES:
            status = ""
        can_remove = states.may_remove_recipients(campaign, request.user)
        table = CampaignRecipientTable(
            queries.campaign_recipients(campaign, status=status or None), exclude=() if can_remove else ("remove",)
        )
        if export_requested(request, table):
            return export_csv(request, table, filename=f"campaign-{campaign.pk}-recipients")
        configure_table(request, table, per_page=self.per_page)
        counts = queries.recipient_counts(campaign)
        context = self.get_context_data(
            campaign=campaign,
            title=_("Recipients of “%(name)s”") % {"name": campaign.name},
            table=table,
            status=status,
            filters=[("", _("All"), sum(counts.values()))]
            + [
                (value, label, counts[value]) for value, label in queries.RECIPIENT_STATUSES.items() if counts.get(value) or value == status
            ],
        )
        return self.render_to_response(context)


class RemoveRecipientView(CampaignPage):
    """GET asks for confirmation, POST takes the contact out of the campaign (the action
    cancels its queued message, or makes sure it is never created)."""

    title = gettext_lazy("Remove a recipient")
    template_name = "console/campaigns/remove_recipient.html"

    def recipient(self) -> CampaignRecipient:
        if not policies.can_send_campaign(self.request.user):
            raise PermissionDenied
        return get_object_or_404(
            CampaignRecipient.objects.select_related("contact", "campaign"), pk=self.kwargs["rid"], campaign_id=self.kwargs["pk"]
        )

    def get_context_data(self, **kwargs) -> dict:
        recipient = self.recipient()
        context = super().get_context_data(**kwargs)
        context.update(recipient=recipient, campaign=recipient.campaign)
        return context

    def post(self, request: HttpRequest, pk: int, rid: int) -> HttpResponse:
        recipient = self.recipient()
        try:
            actions.remove_recipient(actor=request.user, recipient=recipient)
        except MailroomError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("%(contact)s will not get this campaign.") % {"contact": recipient.contact})
        return redirect("admin:marketing_campaign_recipients", pk=pk)


class CampaignReportView(CampaignPage):
    title = gettext_lazy("Campaign report")
    template_name = "console/campaigns/report.html"
    permission_required = ("marketing.report_campaign",)

    def get_context_data(self, **kwargs) -> dict:
        campaign = self.campaign()
        report = queries.campaign_report(campaign)
        context = super().get_context_data(**kwargs)
        cards = [
            (_("Recipients"), report["recipients"]),
            (_("Sent"), report["sent"]),
            (_("Delivered"), report["delivered"]),
            (_("Opens"), report["opens"]),
            (_("Clicks"), report["clicks"]),
            (_("Unsubscribes"), report["unsubscribes"]),
            (_("Bounces"), report["bounces"]),
            (_("Complaints"), report["complaints"]),
            (_("Conversions"), report["conversions"]),
            (_("Revenue"), format_money(report["revenue"])),
        ]
        figures = analytics_charts.campaign_report_figures(report, timeline=queries.engagement_timeline(campaign))
        chart_cards, figures = analytics_charts.campaign_report_cards(figures)
        context.update(
            campaign=campaign,
            title=_("Report: %(name)s") % {"name": campaign.name},
            report=report,
            cards=cards,
            chart_cards=chart_cards,
            charts=figures,
            overview_url=reverse("admin:marketing_campaign_overview", args=[campaign.pk]),
            send_progress=queries.send_progress(campaign),
        )
        return context
