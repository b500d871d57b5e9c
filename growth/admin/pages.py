"""Growth's own console pages: a customer lookup, one contact's growth summary, and the
growth report (plotly figures built with marketing.analytics.charts, drawn by the shared
static/mailroom/charts.js and console/analytics/chart.html, like every analytics report)."""

import plotly.graph_objects as go
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.views import UnfoldSiteViewMixin

from growth import policies, queries
from growth.models import Referral
from growth.referrals import create_referral_code
from growth.tables import GiftCardLedgerTable, LoyaltyLedgerTable
from marketing.analytics.charts import card, figure
from messaging.errors import MailroomError
from messaging.models import Contact
from messaging.tables import EXPORT_PARAM, configure_table, export_csv, export_requested


class GrowthPage(UnfoldSiteViewMixin):
    permission_required = ("growth.view_loyaltyaccount",)


class CustomerLookupView(GrowthPage):
    title = gettext_lazy("Customer growth")

    def get(self, request: HttpRequest) -> TemplateResponse:
        query = request.GET.get("q", "").strip()[:100]
        contacts = []
        if query:
            contacts = list(
                Contact.objects.active().filter(Q(email__icontains=query) | Q(phone__icontains=query) | Q(external_id=query))[:20]
            )
        return TemplateResponse(request, "console/growth/customer_lookup.html", self.get_context_data(query=query, contacts=contacts))


class ContactGrowthView(GrowthPage):
    """One contact's growth summary; POST creates their referral code (staff whose role may
    hand out codes: growth.policies.can_create_referral_codes)."""

    title = gettext_lazy("Customer growth")

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        contact = get_object_or_404(Contact, pk=pk)
        summary = queries.contact_growth_summary(contact=contact)
        points, cards = summary.pop("ledger"), summary.pop("gift_card_ledger")
        # Each ledger is shown, paged and exported only to the roles that may read it.
        ledgers = {
            "ledger": LoyaltyLedgerTable(points, prefix="points-") if policies.can_view_points_ledger(request.user) else None,
            "gift_card_ledger": GiftCardLedgerTable(cards, prefix="cards-")
            if policies.can_view_gift_card_transactions(request.user)
            else None,
        }
        for prefix, table in (("points-", ledgers["ledger"]), ("cards-", ledgers["gift_card_ledger"])):
            if request.GET.get(prefix + EXPORT_PARAM):
                if table is None:
                    raise PermissionDenied
                if export_requested(request, table):
                    return export_csv(request, table, filename=f"contact-{contact.pk}-{table.export_name}")
            if table is not None:
                configure_table(request, table)
        self.title = _("Growth summary: %(contact)s") % {"contact": contact}
        context = self.get_context_data(**summary, **ledgers, can_create_referral_code=policies.can_create_referral_codes(request.user))
        return TemplateResponse(request, "console/growth/contact_summary.html", context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not policies.can_create_referral_codes(request.user):
            raise PermissionDenied
        contact = get_object_or_404(Contact, pk=pk)
        try:
            code, created = create_referral_code(actor=request.user, contact=contact)
        except MailroomError as error:
            messages.error(request, str(error))
        else:
            if created:
                messages.success(request, _("Referral code %(code)s created for %(contact)s.") % {"code": code.code, "contact": contact})
            else:
                messages.info(request, _("%(contact)s already has the referral code %(code)s.") % {"code": code.code, "contact": contact})
        return redirect("admin:growth_contact", pk=contact.pk)


def report_figures(*, days: int = 30) -> dict[str, dict]:
    points = queries.points_per_day(days=days)
    statuses = queries.referrals_by_status()
    liability = queries.gift_card_liability_per_day(days=days)
    labels = dict(Referral.Status.choices)
    return {
        "points": figure(
            go.Bar(name=_("Points issued"), x=points["days"], y=points["issued"], marker_color="#0284c7"),
            go.Bar(name=_("Points redeemed"), x=points["days"], y=points["redeemed"], marker_color="#f59e0b"),
            layout={"barmode": "group"},
        ),
        "referrals": figure(
            go.Bar(x=[str(labels[s]) for s in statuses], y=list(statuses.values()), marker_color="#0284c7"),
        ),
        "liability": figure(
            *[
                go.Scatter(name=currency, x=liability["days"], y=values, mode="lines", fill="tozeroy")
                for currency, values in liability["series"].items()
            ],
        ),
    }


class GrowthReportView(GrowthPage):
    title = gettext_lazy("Growth report")

    def get(self, request: HttpRequest) -> TemplateResponse:
        days = 90 if request.GET.get("days") == "90" else 30
        figures = report_figures(days=days)
        context = self.get_context_data(
            days=days,
            figures=queries.growth_figures(),
            charts=[
                card("chart-points", _("Points issued and redeemed per day"), figures["points"]),
                card("chart-referrals", _("Referrals by status"), figures["referrals"]),
                card("chart-liability", _("Gift-card liability (outstanding balance)"), figures["liability"]),
            ],
        )
        return TemplateResponse(request, "console/growth/report.html", context)
