"""Campaigns in the console: the list (state filters, row actions) and the pages mounted
on it — wizard, overview, dry run, transitions, report, approval queue, calendar.

Adding and changing go through the wizard (which calls the actions); the stock change
form is never used, so no state can be changed by editing a field."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter
from unfold.decorators import action

from marketing.campaigns import policies
from marketing.models import Campaign
from marketing.views.approvals import ApprovalQueueView
from marketing.views.calendar import CalendarView, RescheduleView
from marketing.views.campaigns import (
    CampaignDryRunView,
    CampaignOverviewView,
    CampaignProgressView,
    CampaignRecipientsView,
    CampaignReportView,
    CampaignTransitionView,
    CampaignWizardView,
    RemoveRecipientView,
)

STATE_BADGES = {
    Campaign.State.DRAFT: "bg-base-100 text-base-700",
    Campaign.State.PENDING_APPROVAL: "bg-amber-100 text-amber-800",
    Campaign.State.APPROVED: "bg-teal-100 text-teal-800",
    Campaign.State.SCHEDULED: "bg-sky-100 text-sky-800",
    Campaign.State.SENDING: "bg-violet-100 text-violet-800",
    Campaign.State.PAUSED: "bg-orange-100 text-orange-800",
    Campaign.State.SENT: "bg-green-100 text-green-800",
    Campaign.State.REJECTED: "bg-red-100 text-red-800",
    Campaign.State.CANCELLED: "bg-base-200 text-base-500",
}


def state_badge(campaign: Campaign) -> str:
    return format_html(
        '<span class="px-2 py-0.5 rounded-default text-xs font-semibold {}" data-state="{}">{}</span>',
        STATE_BADGES.get(campaign.state, ""),
        campaign.state,
        campaign.get_state_display(),
    )


@admin.register(Campaign)
class CampaignAdmin(ModelAdmin):
    list_display = ("name_link", "state_label", "channel", "topic", "send_at", "created_by", "recipient_count")
    list_display_links = None  # name_link is the row's link (a second, wrapping <a> would be empty)
    list_filter = (("state", ChoicesDropdownFilter), ("channel", ChoicesDropdownFilter), ("topic", RelatedDropdownFilter))
    list_filter_submit = True
    search_fields = ("name",)
    list_select_related = ("topic", "created_by")
    actions_row = ["row_overview", "row_edit", "row_report"]
    actions_list = ["list_new", "list_calendar", "list_approvals"]

    @admin.display(description=_("name"), ordering="name")
    def name_link(self, obj: Campaign) -> str:
        return format_html(
            '<a class="text-primary-600 underline" href="{}">{}</a>', reverse("admin:marketing_campaign_overview", args=[obj.pk]), obj.name
        )

    @admin.display(description=_("state"), ordering="state")
    def state_label(self, obj: Campaign) -> str:
        return state_badge(obj)

    # Row and list actions only navigate (GET is safe); state changes are POST forms on the
    # overview and approval pages.
    @action(description=_("Overview"), url_path="row-overview")
    def row_overview(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return redirect("admin:marketing_campaign_overview", pk=object_id)

    @action(description=_("Edit"), url_path="row-edit", permissions=["change"])
    def row_edit(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return redirect("admin:marketing_campaign_edit", pk=object_id)

    @action(description=_("Report"), url_path="row-report", permissions=["report"])
    def row_report(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return redirect("admin:marketing_campaign_report", pk=object_id)

    @action(description=_("New campaign"), url_path="list-new", permissions=["add"])
    def list_new(self, request: HttpRequest) -> HttpResponse:
        return redirect("admin:marketing_campaign_new")

    @action(description=_("Calendar"), url_path="list-calendar")
    def list_calendar(self, request: HttpRequest) -> HttpResponse:
        return redirect("admin:marketing_campaign_calendar")

    @action(description=_("Approval queue"), url_path="list-approvals", permissions=["approve"])
    def list_approvals(self, request: HttpRequest) -> HttpResponse:
        return redirect("admin:marketing_campaign_approvals")

    def has_report_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_view_report(request.user)

    def has_approve_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_approve_campaign(request.user)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # campaigns are cancelled, never deleted: their history stays

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        return redirect("admin:marketing_campaign_new")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None) -> HttpResponse:
        return redirect("admin:marketing_campaign_overview", pk=object_id)

    def get_urls(self):
        def view(cls, **extra):
            return self.admin_site.admin_view(cls.as_view(model_admin=self, **extra))

        return [
            path("new/", view(CampaignWizardView), name="marketing_campaign_new"),
            path("approvals/", view(ApprovalQueueView), name="marketing_campaign_approvals"),
            path("calendar/", view(CalendarView), name="marketing_campaign_calendar"),
            path("<int:pk>/overview/", view(CampaignOverviewView), name="marketing_campaign_overview"),
            path("<int:pk>/edit/", view(CampaignWizardView), name="marketing_campaign_edit"),
            path("<int:pk>/dry-run/", view(CampaignDryRunView), name="marketing_campaign_dry_run"),
            path("<int:pk>/report/", view(CampaignReportView), name="marketing_campaign_report"),
            path("<int:pk>/progress/", view(CampaignProgressView), name="marketing_campaign_progress"),
            path("<int:pk>/recipients/", view(CampaignRecipientsView), name="marketing_campaign_recipients"),
            path("<int:pk>/recipients/<int:rid>/remove/", view(RemoveRecipientView), name="marketing_campaign_remove_recipient"),
            path("<int:pk>/reschedule/", view(RescheduleView), name="marketing_campaign_reschedule"),
            path("<int:pk>/do/<slug:name>/", view(CampaignTransitionView), name="marketing_campaign_transition"),
            *super().get_urls(),
        ]
