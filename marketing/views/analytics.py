"""The analytics console: the dashboard (today and a date range, filters through HTMX),
chart JSON endpoints, CSV exports, and the campaign / automation reports that reuse the
same page with one dimension fixed. Everything reads the DailyStat rollup."""

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from unfold.views import UnfoldSiteViewMixin

from marketing.analytics import charts, queries
from marketing.analytics.status_table import message_status_table
from marketing.tables import AnalyticsTable
from messaging.models import Channel
from messaging.tables import configure_table, export_csv

RANGES = (
    ("7", gettext_lazy("7 days")),
    ("30", gettext_lazy("30 days")),
    ("90", gettext_lazy("90 days")),
    ("custom", gettext_lazy("Custom")),
)
MAX_DAYS = 366


PRESETS = ("7", "30", "90")


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

    def __init__(self, data=None, *args, **kwargs):
        # A From or To date means a custom period, whatever the Period select says: a
        # browser without JavaScript sends the select's old value with the dates.
        if data is not None and (data.get("since") or data.get("until")):
            data = data.copy()
            data["range"] = "custom"
        super().__init__(data, *args, **kwargs)
        self.notices: list[str] = []

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError(_("The From date must be on or before the To date."), code="order")
        return data

    def problems(self) -> list[str]:
        """What the person should know about the period shown: each bad field, named."""
        if not self.is_bound or self.is_valid():
            return self.notices
        found = [str(error) for error in self.non_field_errors()]
        for name, errors in self.errors.items():
            if name != NON_FIELD_ERRORS:
                found += [f"{self.fields[name].label}: {error}" for error in errors]
        if self.bad_dates():
            found.append(_("Showing the last 30 days instead."))
        return [*found, *self.notices]

    def bad_dates(self) -> bool:
        return any(name in self.errors for name in ("since", "until", NON_FIELD_ERRORS))

    def filters(self, **fixed: str) -> queries.Filters:
        """The filters asked for. Explicit dates make a custom period (a missing To is today,
        a missing From 30 days before To); bad dates fall back to the last 30 days, and
        `problems()` says why."""
        self.is_valid()
        data = dict(getattr(self, "cleaned_data", {}))
        today = timezone.localdate()
        since, until = data.get("since"), data.get("until")
        if self.is_bound and not self.bad_dates() and (since or until):
            until = until or max(today, since)
            since = since or until - timedelta(days=29)
            if (until - since).days >= MAX_DAYS:
                since = until - timedelta(days=MAX_DAYS - 1)
                self.notices = [_("A report covers at most %(n)s days: showing the last %(n)s up to the To date.") % {"n": MAX_DAYS}]
        else:
            days = int(data["range"]) if data.get("range", "") in PRESETS else 30
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


def table_rows(table: str, filters: queries.Filters) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of one table, the same on the page and in its CSV export."""
    if table == "message_stats":
        stats = message_status_table(filters)
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


def analytics_table(name: str, filters: queries.Filters, *, export_url: str = "") -> AnalyticsTable:
    """One table as a django-tables2 table; "Messages by status" ends with its total row, so
    it keeps its order."""
    header, rows = table_rows(name, filters)
    keys = ["channel", "total", *header[2:]] if name == "message_stats" else [str(column) for column in header]
    return AnalyticsTable(
        name=name, keys=keys, header=header, rows=rows, title=TABLES[name], orderable=name != "message_stats", export_url=export_url
    )


class AnalyticsPage(UnfoldSiteViewMixin):
    permission_required = ("marketing.view_dailystat",)
    fixed: str = ""  # "campaign_id" or "automation_id" on a report page

    def fixed_filter(self, **kwargs) -> dict[str, str]:
        return {self.fixed: str(kwargs["object_id"])[:64]} if self.fixed else {}


class AnalyticsView(AnalyticsPage):
    title = gettext_lazy("Analytics")
    template_name = "console/analytics/dashboard.html"

    def get(self, request: HttpRequest, **kwargs) -> TemplateResponse:
        form = FilterForm(request.GET or None, initial={"range": "30"})
        filters = form.filters(**self.fixed_filter(**kwargs))
        params = request.GET.copy()
        if self.fixed:
            params[self.fixed] = getattr(filters, self.fixed)
        query = params.urlencode()
        tables = [
            configure_table(
                request, analytics_table(name, filters, export_url=reverse("admin:analytics_export", args=[name]) + f"?{query}")
            )
            for name in TABLES
            if not (self.fixed and name == self.fixed)
        ]
        overview = queries.overview(filters)
        context = self.get_context_data(
            form=form,
            filters=filters,
            overview=overview,
            today=overview["today"],
            totals=overview["range"],
            filter_problems=form.problems(),
            currency=settings.MAILROOM_CURRENCY,
            charts=[
                charts.card(f"chart-{name}", title, charts.build(name, filters))
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
        return export_csv(request, analytics_table(table, filters), filename=f"analytics-{table}-{filters.since}-{filters.until}")
