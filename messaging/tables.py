"""The console's own list pages, built with django-tables2: one `ConsoleTable` subclass per
list gives sortable columns, paging and a CSV export. Admin changelists are not built here
(Unfold pages and sorts those).

- Sorting: `?sort=<column>` (or `-<column>`); django-tables2 drops a key that names no
  orderable column, so the default order stays (no error page for a hand-typed URL).
- Paging: `?page=N`, 50 rows a page; a page past the end shows the last one, a page that is
  not a number the first (RequestConfig's silent mode), and `per_page` is clamped to 1..500.
- Export: `?_export=csv` on the page's own URL, so it is behind the page's own permission
  check; every cell is formula-escaped (messaging.spreadsheets) and the sort order is kept.

A page with several tables gives each a `prefix` (`daily-sort`, `daily-page`, …).
"""

import django_tables2 as tables
from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from django_tables2 import RequestConfig
from django_tables2.export import TableExport

from messaging.spreadsheets import escape_formula

PER_PAGE = 50
MAX_PER_PAGE = 500
EXPORT_PARAM = "_export"
CSV = TableExport.CSV

# Unfold's changelist cell classes (unfold/templatetags/unfold_list.py TABLE_CELL_CLASSES).
CELL = "align-middle border-t border-base-200 px-3 py-1.5 h-[45px] text-start dark:border-base-800"
HEADER = "align-middle font-semibold py-2 px-3 text-start text-important whitespace-nowrap"
LINK = "text-primary-600 dark:text-primary-500 underline"


def link(url: str, text) -> str:
    """A link in a cell, in Unfold's primary colour; `text` is escaped."""
    return format_html('<a class="{}" href="{}">{}</a>', LINK, url, text)


class ConsolePaginator(Paginator):
    """Django's paginator with the page size a URL may ask for kept within 1..MAX_PER_PAGE
    (`per_page=0` would divide by zero)."""

    def __init__(self, object_list, per_page, *args, **kwargs):
        super().__init__(object_list, min(max(int(per_page), 1), MAX_PER_PAGE), *args, **kwargs)


class ConsoleTable(tables.Table):
    """The base of every console list: Unfold's look, 50 a page, `sort`/`page` parameters."""

    export_name = "table"  # the CSV file name, without the extension
    exportable = True  # show the "Export CSV" link
    export_url = ""  # where that link goes; empty: this page with ?<prefix>_export=csv
    count_noun = ngettext_lazy("%(count)s row", "%(count)s rows", "count")  # lists name their own rows

    class Meta:
        template_name = "console/table.html"
        per_page = PER_PAGE
        order_by_field = "sort"
        attrs = {
            "class": "border-separate border-spacing-none w-full text-sm",
            "th": {"class": HEADER},
            "td": {"class": CELL},
        }
        empty_text = _("Nothing to show.")

    def row_count(self) -> int:
        return self.paginator.count if hasattr(self, "paginator") else len(self.rows)

    def count_label(self) -> str:
        """ "12 rows" under the table ("12 recipients" with the list's own `count_noun`)."""
        return self.count_noun % {"count": self.row_count()}

    def export_url_param(self) -> str:
        return f"{self.prefix}{EXPORT_PARAM}"

    def export_testid(self) -> str:
        return f"{self.prefix}export-csv"


class LinkColumn(tables.Column):
    """A cell that links to `reverse(url_name, args=[record.<pk_field>])`; the CSV keeps the
    cell's text."""

    def __init__(self, *, url_name: str, pk_field: str = "pk", **kwargs):
        self.url_name, self.pk_field = url_name, pk_field
        super().__init__(**kwargs)

    def render(self, value, record) -> str:
        return link(reverse(self.url_name, args=[getattr(record, self.pk_field)]), value)

    def value(self, value) -> str:
        return str(value)


def order_nullable(queryset: QuerySet, column: str, *, descending: bool, null_is_lowest: bool = False) -> tuple[QuerySet, bool]:
    """What a table's `order_<column>` returns for a column that may be NULL, the same on
    every database: NULLs last either way, or, `null_is_lowest`, first when ascending; then
    by id."""
    field = F(column)
    if descending:
        order = field.desc(nulls_last=True)
    else:
        order = field.asc(nulls_first=True) if null_is_lowest else field.asc(nulls_last=True)
    return queryset.order_by(order, "-id" if descending else "id"), True


class SafeTableExport(TableExport):
    """TableExport whose cells (and headers) can never be spreadsheet formulas."""

    def table_to_dataset(self, table, exclude_columns, dataset_kwargs=None):
        dataset = super().table_to_dataset(table, exclude_columns, dataset_kwargs)
        dataset.headers = [escape_formula(header) for header in dataset.headers or []]
        for index in range(len(dataset)):
            dataset[index] = tuple(escape_formula(cell) for cell in dataset[index])
        return dataset


def configure_table[T: ConsoleTable](request: HttpRequest, table: T, *, per_page: int = PER_PAGE) -> T:
    """Sort and page `table` from the request's query string (see the module docstring)."""
    RequestConfig(request, paginate={"per_page": per_page, "paginator_class": ConsolePaginator}).configure(table)
    return table


def export_requested(request: HttpRequest, table: ConsoleTable) -> bool:
    return request.GET.get(table.export_url_param()) == CSV


def export_csv(request: HttpRequest, table: ConsoleTable, *, filename: str | None = None) -> HttpResponse:
    """The whole table (every page), in the order asked for, as a formula-safe CSV."""
    RequestConfig(request, paginate=False).configure(table)
    return SafeTableExport(CSV, table).response(filename=f"{filename or table.export_name}.csv")
