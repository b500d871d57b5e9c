"""Campaign pages mounted on CampaignAdmin: the create/edit wizard, the overview with its
dry run and state buttons, the transition endpoint and the report. Thin: parse, call an
action, render. Every view checks its policy function; the sidebar only hides links."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View
from unfold.views import UnfoldModelAdminViewMixin

from marketing.analytics import charts as analytics_charts
from marketing.campaigns import actions, policies, queries
from marketing.campaigns.languages import language_rows, language_warnings
from marketing.campaigns.preview import dry_run
from marketing.campaigns.states import TRANSITIONS, authors
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


def available_actions(user, campaign: Campaign) -> list[dict]:
    """The buttons a person may press on this campaign now (the server re-checks on POST)."""
    allowed = TRANSITIONS[campaign.state]
    buttons = []
    edit = policies.can_edit_campaign(user)
    send = policies.can_send_campaign(user)
    approve = policies.can_approve_campaign(user) and user.pk not in authors(campaign)
    if edit and State.PENDING_APPROVAL in allowed:
        buttons.append({"name": "submit", "label": _("Submit for approval"), "style": "primary"})
    if approve and State.APPROVED in allowed:
        buttons.append({"name": "approve", "label": _("Approve"), "style": "primary"})
    if send and campaign.state == State.APPROVED:
        buttons.append({"name": "schedule", "label": _("Schedule"), "style": "primary"})
    if send and campaign.state == State.SENDING:
        buttons.append({"name": "pause", "label": _("Pause"), "style": "secondary"})
    if send and campaign.state == State.PAUSED:
        buttons.append({"name": "resume", "label": _("Resume"), "style": "primary"})
    if edit and campaign.state in (State.REJECTED, State.PENDING_APPROVAL, State.APPROVED, State.SCHEDULED):
        buttons.append({"name": "reopen", "label": _("Back to draft"), "style": "secondary"})
    if send and State.CANCELLED in allowed:
        buttons.append({"name": "cancel", "label": _("Cancel campaign"), "style": "danger"})
    return buttons


class CampaignOverviewView(CampaignPage):
    title = gettext_lazy("Campaign")
    template_name = "console/campaigns/overview.html"

    def get_context_data(self, **kwargs) -> dict:
        campaign = self.campaign()
        context = super().get_context_data(**kwargs)
        context.update(
            campaign=campaign,
            title=campaign.name,
            buttons=available_actions(self.request.user, campaign),
            seen=submission_token(campaign.submitted_at),
            can_edit=policies.can_edit_campaign(self.request.user)
            and campaign.state in (State.DRAFT, State.REJECTED, State.PENDING_APPROVAL, State.APPROVED, State.SCHEDULED),
            can_report=policies.can_view_report(self.request.user),
            can_review=policies.can_approve_campaign(self.request.user) and self.request.user.pk not in authors(campaign),
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


TRANSITION_ACTIONS = {
    "submit": (policies.can_edit_campaign, lambda r, c: actions.submit_campaign(actor=r.user, campaign=c), _("Submitted for approval.")),
    "approve": (
        policies.can_approve_campaign,
        lambda r, c: actions.approve_campaign(actor=r.user, campaign=c, seen=r.POST.get("seen")),
        _("Campaign approved."),
    ),
    "reject": (None, None, _("Campaign rejected.")),
    "schedule": (policies.can_send_campaign, lambda r, c: actions.schedule_campaign(actor=r.user, campaign=c), _("Campaign scheduled.")),
    "pause": (policies.can_send_campaign, lambda r, c: actions.pause_campaign(actor=r.user, campaign=c), _("Campaign paused.")),
    "resume": (policies.can_send_campaign, lambda r, c: actions.resume_campaign(actor=r.user, campaign=c), _("Campaign resumed.")),
    "cancel": (policies.can_send_campaign, lambda r, c: actions.cancel_campaign(actor=r.user, campaign=c), _("Campaign cancelled.")),
    "reopen": (
        policies.can_edit_campaign,
        lambda r, c: actions.reopen_campaign(actor=r.user, campaign=c),
        _("The campaign is a draft again."),
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


def figure_json(figure) -> dict:
    """A plotly figure as plain JSON data, drawn by static/mailroom/charts.js."""
    import plotly.io

    return json.loads(plotly.io.to_json(figure, validate=False))


def report_charts(campaign: Campaign, report: dict) -> dict[str, dict]:
    """The report's plotly figures by name, in the active language's number format."""
    import plotly.graph_objects as go

    layout = {
        "margin": {"l": 40, "r": 10, "t": 40, "b": 40},
        "height": 320,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "separators": analytics_charts.separators(),
    }
    steps = [
        ("sent", _("Sent")),
        ("delivered", _("Delivered")),
        ("opens", _("Opens")),
        ("clicks", _("Clicks")),
        ("conversions", _("Conversions")),
    ]
    funnel = go.Figure(go.Bar(x=[str(label) for _key, label in steps], y=[report[key] for key, _label in steps], marker_color="#0284c7"))
    funnel.update_layout(title=str(_("Funnel")), **layout)
    figures = {"funnel": figure_json(funnel)}
    if report["variants"]:
        variants = go.Figure(
            [
                go.Bar(
                    name=str(_("Open rate %")), x=[v["label"] for v in report["variants"]], y=[v["open_rate"] for v in report["variants"]]
                ),
                go.Bar(
                    name=str(_("Click rate %")), x=[v["label"] for v in report["variants"]], y=[v["click_rate"] for v in report["variants"]]
                ),
            ]
        )
        variants.update_layout(title=str(_("Variants")), barmode="group", **layout)
        figures["variants"] = figure_json(variants)
    timeline = queries.engagement_timeline(campaign)
    if timeline:
        # Local wall-clock hours (plotly ignores offsets) on an axis of whole hours.
        hours = {row["hour"]: timezone.localtime(row["hour"]).replace(tzinfo=None) for row in timeline}
        series = go.Figure()
        for kind, label in (("opened", _("Opens")), ("clicked", _("Clicks"))):
            rows = [row for row in timeline if row["kind"] == kind]
            series.add_trace(
                go.Scatter(
                    name=str(label), x=[hours[row["hour"]].isoformat() for row in rows], y=[row["n"] for row in rows], mode="lines+markers"
                )
            )
        series.update_layout(title=str(_("Engagement per hour")), xaxis=analytics_charts.hourly_axis(hours.values()), **layout)
        figures["timeline"] = figure_json(series)
    return figures


CHART_TITLES = {"funnel": gettext_lazy("Funnel"), "variants": gettext_lazy("Variants"), "timeline": gettext_lazy("Engagement per hour")}


def report_chart_cards(figures: dict[str, dict]) -> tuple[list[dict], dict[str, dict]]:
    """(one card per chart, with its empty state; the figures worth drawing)."""
    cards = [{"name": name, "title": CHART_TITLES[name], "empty": analytics_charts.is_empty(fig)} for name, fig in figures.items()]
    return cards, {card["name"]: figures[card["name"]] for card in cards if not card["empty"]}


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
        can_remove = policies.can_send_campaign(request.user) and campaign.state in actions.RECIPIENTS_REMOVABLE_IN
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
        chart_cards, figures = report_chart_cards(report_charts(campaign, report))
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
