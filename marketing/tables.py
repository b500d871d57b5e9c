"""Marketing's console lists as django-tables2 tables (see messaging.tables): a campaign's
recipients, an automation's runs and the analytics tables. Sortable columns order in the
database on indexed or annotated fields (analytics rows are already aggregated: at most a
year of days or one row per campaign, sorted in memory)."""

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from marketing.campaigns.queries import RECIPIENT_STATUSES
from marketing.models import AutomationRun, CampaignRecipient
from marketing.templatetags.analytics import channel_label, column_label
from messaging.tables import CELL, LINK, ConsoleTable, LinkColumn, link, order_nullable


class CampaignRecipientTable(ConsoleTable):
    """Rows of `marketing.campaigns.queries.campaign_recipients` (annotated `delivery_status`)."""

    export_name = "recipients"
    count_noun = ngettext_lazy("%(count)s recipient", "%(count)s recipients", "count")

    contact = LinkColumn(
        url_name="admin:messaging_contact_change", pk_field="contact_id", verbose_name=_("Contact"), order_by=("contact__email", "id")
    )
    delivery_status = tables.Column(
        verbose_name=_("Status"),
        order_by=("delivery_status", "id"),
        attrs={"td": {"class": CELL, "data-testid": "recipient-status", "data-status": lambda record: record.delivery_status}},
    )
    skip_reason = tables.Column(verbose_name=_("Reason"), order_by=("skip_reason", "id"))
    variant = tables.Column(verbose_name=_("Variant"), accessor="variant__label", orderable=False)
    scheduled_at = tables.DateTimeColumn(verbose_name=_("Send at"), order_by=("scheduled_at", "id"))
    message = tables.Column(verbose_name=_("Message"), accessor="message_id", order_by=("message_id",))
    remove = tables.TemplateColumn(
        template_name="console/campaigns/_remove_recipient_cell.html", verbose_name="", orderable=False, exclude_from_export=True
    )

    class Meta(ConsoleTable.Meta):
        model = CampaignRecipient
        fields = ()
        sequence = ("contact", "delivery_status", "skip_reason", "variant", "scheduled_at", "message", "remove")
        attrs = {**ConsoleTable.Meta.attrs, "data-testid": "recipient-table"}
        row_attrs = {"data-testid": "recipient-row"}

    def order_contact(self, queryset, is_descending: bool):
        """By address; contacts without an email (phone only, NULL) first, on every database."""
        return order_nullable(queryset, "contact__email", descending=is_descending, null_is_lowest=True)

    def render_delivery_status(self, value: str) -> str:
        return str(RECIPIENT_STATUSES.get(value, value))

    def value_delivery_status(self, value: str) -> str:
        return value

    def render_skip_reason(self, record: CampaignRecipient) -> str:
        return record.get_skip_reason_display()

    def render_message(self, record: CampaignRecipient) -> str:
        if record.message is None:
            return _("#%(id)s · not created yet") % {"id": record.message_id}
        return format_html(
            '<a class="{}" href="{}">#{} · {}</a>',
            LINK,
            reverse("admin:messaging_outboxmessage_change", args=[record.message_id]),
            record.message_id,
            record.message.get_status_display(),
        )

    def value_message(self, record: CampaignRecipient) -> int | None:
        return record.message_id


class AutomationRunTable(ConsoleTable):
    """An automation's runs (`marketing.automations.queries.automation_runs`, logs prefetched)."""

    export_name = "automation-runs"
    count_noun = ngettext_lazy("%(count)s run", "%(count)s runs", "count")

    contact = LinkColumn(url_name="admin:marketing_automationrun_change", verbose_name=_("Contact"), order_by=("contact__email", "id"))
    status = tables.Column(verbose_name=_("Status"), order_by=("status", "-started_at", "-id"))
    steps = tables.Column(verbose_name=_("Steps done"), accessor="pk", orderable=False)
    next_run_at = tables.DateTimeColumn(verbose_name=_("Next run"), order_by=("next_run_at", "id"))
    started_at = tables.DateTimeColumn(verbose_name=_("Started"), order_by=("started_at", "id"))
    ended_at = tables.DateTimeColumn(verbose_name=_("Ended"), order_by=("ended_at", "id"))

    class Meta(ConsoleTable.Meta):
        model = AutomationRun
        fields = ()
        sequence = ("contact", "status", "steps", "next_run_at", "started_at", "ended_at")
        attrs = {**ConsoleTable.Meta.attrs, "data-testid": "runs"}
        row_attrs = {"data-testid": "run-row"}
        empty_text = _("No runs yet.")

    def order_next_run_at(self, queryset, is_descending: bool):
        """Runs with nothing due (NULL) last either way, on every database."""
        return order_nullable(queryset, "next_run_at", descending=is_descending)

    def render_status(self, record: AutomationRun) -> str:
        status = record.get_status_display()
        return f"{status} · {record.exit_reason}" if record.exit_reason else status

    def value_status(self, record: AutomationRun) -> str:
        return record.status

    def render_steps(self, record: AutomationRun) -> str:
        return format_html_join(
            "",
            '<span class="text-xs px-1 rounded-default bg-base-100 dark:bg-base-800 mr-1">{}:{}</span>',
            ((log.step_index + 1, log.outcome) for log in record.logs.all()),
        )

    def value_steps(self, record: AutomationRun) -> str:
        return " ".join(f"{log.step_index + 1}:{log.outcome}" for log in record.logs.all())


class ReportLinkColumn(tables.Column):
    """A campaign or automation id that opens its analytics report ("-" stays plain)."""

    def __init__(self, *, url_name: str, **kwargs):
        self.url_name = url_name
        super().__init__(**kwargs)

    def render(self, value):
        if value in ("-", "", None):
            return value
        return link(reverse(self.url_name, args=[value]), value)

    def value(self, value):
        return value


REPORT_LINKS = {"campaign_id": "admin:analytics_campaign", "automation_id": "admin:analytics_automation"}


class ChannelColumn(tables.Column):
    """A channel shown in words ("Email", "E-mail" in French); the CSV keeps the key."""

    def render(self, value):
        return channel_label(value)

    def value(self, value):
        return value


class AnalyticsTable(ConsoleTable):
    """Any table of the analytics page: its columns are the header that
    `marketing.views.analytics.table_rows` gives (the same on the page and in the CSV), its
    rows already aggregated (a year of days at most, one row per campaign or channel), so
    sorting happens in memory. Each table has its own prefix (`daily-sort`, `daily-page`)."""

    def __init__(
        self,
        *,
        name: str,
        keys: list[str],
        header: list[str],
        rows: list[list],
        title: str = "",
        orderable: bool = True,
        export_url: str = "",
        **kwargs,
    ):
        self.name, self.title, self.export_url = name, title, export_url
        self.export_name = f"analytics-{name}"
        self.keys = keys

        def column(index: int, key: str, label: str) -> tables.Column:
            label = column_label(label)  # words on the page; the CSV header keeps the keys (as_values)
            if index == 0 and key in REPORT_LINKS:
                return ReportLinkColumn(url_name=REPORT_LINKS[key], verbose_name=label)
            if index == 0 and key == "channel":
                return ChannelColumn(verbose_name=label)
            return tables.Column(verbose_name=label)

        columns = [(key, column(index, key, label)) for index, (key, label) in enumerate(zip(keys, header, strict=True))]
        super().__init__(
            [dict(zip(keys, row, strict=True)) for row in rows],
            extra_columns=columns,
            prefix=f"{name}-",
            orderable=orderable,
            attrs={**ConsoleTable.Meta.attrs, "data-testid": f"table-{name}"},
            **kwargs,
        )

    class Meta(ConsoleTable.Meta):
        row_attrs = {"data-testid": "analytics-row"}
        empty_text = _("Nothing in this period.")

    def export_testid(self) -> str:
        return f"csv-{self.name}"

    def as_values(self, exclude_columns=None):
        """The CSV: the header row names the columns by key, as the analytics API does."""
        rows = super().as_values(exclude_columns)
        next(rows)
        yield [str(key) for key in self.keys]
        yield from rows
