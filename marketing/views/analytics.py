"""The analytics console: the dashboard (today and a date range, filters through HTMX),
chart JSON endpoints, CSV exports, and the campaign / automation reports that reuse the
same page with one dimension fixed. Everything reads the DailyStat rollup."""

import csv
from datetime import timedelta
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from unfold.views import UnfoldSiteViewMixin

from marketing.analytics import charts, queries
from marketing.analytics.rollups import day_start
from messaging.models import Channel, OutboxMessage
from messaging.queries import message_stats
from messaging.spreadsheets import escape_formula

RANGES = (
    ("7", gettext_lazy("7 days")),
    ("30", gettext_lazy("30 days")),
    ("90", gettext_lazy("90 days")),
    ("custom", gettext_lazy("Custom")),
)
MAX_DAYS = 366


class FilterForm(forms.Form):
    range = forms.ChoiceField(label=gettext_lazy("Period"), choices=RANGES, required=False)
    since = forms.DateField(
        label=pgettext_lazy("start of a date range", "From"),
        required=False,
        validators=[queries.reporting_day],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        label=pgettext_lazy("end of a date range", "To"),
        required=False,
        validators=[queries.reporting_day],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"), choices=[("", gettext_lazy("All channels")), *Channel.choices], required=False
    )

    def filters(self, **fixed: str) -> queries.Filters:
        """The filters asked for; anything invalid falls back to the last 30 days."""
        data = self.cleaned_data if self.is_valid() else {}
        today = timezone.localdate()
        since, until = data.get("since"), data.get("until")
        if data.get("range") == "custom" and since and until and since <= until:
            since = max(since, until - timedelta(days=MAX_DAYS - 1))
        else:
            days = int(data["range"]) if data.get("range", "") in ("7", "30", "90") else 30
            since, until = today - timedelta(days=days - 1), today
        return queries.Filters(since=since, until=until, channel=data.get("channel") or "", **fixed)


TABLES = {
    "daily": gettext_lazy("Per day"),
    "channel": gettext_lazy("Per channel"),
    "provider": gettext_lazy("Per provider"),
    "topic": gettext_lazy("Per topic"),
    "campaign_id": gettext_lazy("Per campaign"),
    "automation_id": gettext_lazy("Per automation"),
    "message_stats": gettext_lazy("Messages by status and channel"),
}
COLUMNS = ("sent", "delivered", "opened_unique", "clicked_unique", "unsubscribed", "bounced", "complained", "conversions", "revenue")
RATE_COLUMNS = ("open_rate", "click_rate", "unsubscribe_rate", "bounce_rate", "complaint_rate")
# What the page's table headers say (the CSV keeps the keys: scripts read it).
COLUMN_LABELS = {
    "day": gettext_lazy("Day"),
    "channel": gettext_lazy("Channel"),
    "provider": gettext_lazy("Provider"),
    "topic": gettext_lazy("Topic"),
    "campaign_id": gettext_lazy("Campaign"),
    "automation_id": gettext_lazy("Automation"),
    "sent": gettext_lazy("Sent"),
    "delivered": gettext_lazy("Delivered"),
    "opened_unique": gettext_lazy("Unique opens"),
    "clicked_unique": gettext_lazy("Unique clicks"),
    "unsubscribed": gettext_lazy("Unsubscribes"),
    "bounced": gettext_lazy("Bounces"),
    "complained": gettext_lazy("Complaints"),
    "conversions": gettext_lazy("Conversions"),
    "revenue": gettext_lazy("Revenue"),
    "open_rate": gettext_lazy("Open rate"),
    "click_rate": gettext_lazy("Click rate"),
    "unsubscribe_rate": gettext_lazy("Unsubscribe rate"),
    "bounce_rate": gettext_lazy("Bounce rate"),
    "complaint_rate": gettext_lazy("Complaint rate"),
}


def column_label(key: str) -> str:
    """A column key as the page shows it: a known label, a message status's label, or the key."""
    if key in COLUMN_LABELS:
        return str(COLUMN_LABELS[key])
    if key in OutboxMessage.Status.values:
        return str(OutboxMessage.Status(key).label)
    return str(key)


def table_rows(table: str, filters: queries.Filters) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of one table, the same on the page and in its CSV export."""
    if table == "message_stats":
        since = day_start(filters.since)
        until = day_start(filters.until + timedelta(days=1))
        stats = message_stats(since=since, until=until, channel=filters.channel or None)
        statuses = list(stats["by_status"])
        rows = [
            [channel, figures["total"], *(figures["by_status"][s] for s in statuses)]
            for channel, figures in sorted(stats["by_channel"].items())
        ]
        rows.append([_("Total"), stats["total"], *(stats["by_status"][s] for s in statuses)])
        return [_("Channel"), _("Total"), *statuses], rows
    if table == "daily":
        key, found = "day", queries.per_day(filters)
    elif table in queries.BREAKDOWNS:
        key, found = table, queries.breakdown(filters, by=table)
    else:
        raise Http404
    header = [key, *COLUMNS, *RATE_COLUMNS]
    return header, [[row[key] or "-", *(row[c] for c in COLUMNS), *(row[r] for r in RATE_COLUMNS)] for row in found]


class AnalyticsPage(UnfoldSiteViewMixin):
    permission_required = ("marketing.view_dailystat",)
    fixed: str = ""  # "campaign_id" or "automation_id" on a report page

    def filters(self, request: HttpRequest, **kwargs) -> queries.Filters:
        fixed = {self.fixed: str(kwargs["object_id"])[:64]} if self.fixed else {}
        return FilterForm(request.GET).filters(**fixed)


class AnalyticsView(AnalyticsPage):
    title = gettext_lazy("Analytics")
    template_name = "console/analytics/dashboard.html"

    def get(self, request: HttpRequest, **kwargs) -> TemplateResponse:
        filters = self.filters(request, **kwargs)
        form = FilterForm(request.GET or None, initial={"range": "30"})
        params = request.GET.copy()
        if self.fixed:
            params[self.fixed] = getattr(filters, self.fixed)
        query = params.urlencode()
        tables = [
            {
                "name": name,
                "title": title,
                "header": [column_label(column) for column in header],
                "rows": rows,
                "csv": reverse("admin:analytics_export", args=[name]) + f"?{query}",
            }
            for name, title in TABLES.items()
            if not (self.fixed and name == self.fixed)
            for header, rows in [table_rows(name, filters)]
        ]
        overview = queries.overview(filters)
        context = self.get_context_data(
            form=form,
            filters=filters,
            overview=overview,
            today=overview["today"],
            totals=overview["range"],
            charts=[
                {"id": f"chart-{name}", "title": title, "figure": charts.build(name, filters)}
                for name, title in (
                    ("timeseries", _("Sent, delivered, opened, clicked per day")),
                    ("funnel", _("Funnel: sent → delivered → opened → clicked → converted")),
                    ("channels", _("Channel mix (sent)")),
                    ("heatmap", _("Opens by weekday and hour")),
                )
            ],
            tables=tables,
            report_of=self.fixed,
            object_id=kwargs.get("object_id", ""),
        )
        template = self.template_name + "#results" if request.headers.get("HX-Request") else self.template_name
        return TemplateResponse(request, template, context)


class CampaignReportView(AnalyticsView):
    title = gettext_lazy("Campaign report")
    fixed = "campaign_id"

    def get(self, request: HttpRequest, **kwargs) -> TemplateResponse:
        self.title = _("Campaign report: %(id)s") % {"id": kwargs["object_id"]}
        return super().get(request, **kwargs)


class AutomationReportView(AnalyticsView):
    title = gettext_lazy("Automation report")
    fixed = "automation_id"

    def get(self, request: HttpRequest, **kwargs) -> TemplateResponse:
        self.title = _("Automation report: %(id)s") % {"id": kwargs["object_id"]}
        return super().get(request, **kwargs)


class ChartView(AnalyticsPage):
    """GET analytics/charts/<name>/?range=…&channel=…&campaign_id=… → the plotly figure."""

    title = gettext_lazy("Analytics")

    def get(self, request: HttpRequest, name: str) -> JsonResponse:
        if name not in charts.CHARTS:
            raise Http404
        fixed = {k: request.GET[k][:64] for k in ("campaign_id", "automation_id") if request.GET.get(k)}
        return JsonResponse(charts.build(name, FilterForm(request.GET).filters(**fixed)))


class ExportView(AnalyticsPage):
    """One table of the page as CSV, for the same filters."""

    title = gettext_lazy("Analytics")

    def get(self, request: HttpRequest, table: str) -> HttpResponse:
        if table not in TABLES:
            raise Http404
        fixed = {k: request.GET[k][:64] for k in ("campaign_id", "automation_id") if request.GET.get(k)}
        filters = FilterForm(request.GET).filters(**fixed)
        header, rows = table_rows(table, filters)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="analytics-{table}-{filters.since}-{filters.until}.csv"'
        writer = csv.writer(response)
        writer.writerow(header)
        for row in rows:
            writer.writerow([escape_formula(value) for value in row])
        return response
