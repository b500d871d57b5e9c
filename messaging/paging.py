"""Counting pages on tables that have grown for years.

Django's paginator (the console's lists, the API's pages) runs a full COUNT(*) on every
request: on PostgreSQL that reads the whole table or index, seconds at five million rows.
`CappedCountPaginator` counts at most `cap` rows of a filtered list (a COUNT over a LIMIT),
and for a list without any filter on PostgreSQL reads the planner's estimate of the table's
size (`pg_class.reltuples`, kept fresh by autovacuum), which costs nothing. Either way it
says so (`is_estimate`), so a page can write "about" or "more than" instead of a number it
does not know. Small tables are counted exactly, as before.
"""

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 10_000


def estimated_rows(queryset: QuerySet) -> int | None:
    """The planner's row estimate for an unfiltered queryset's table on PostgreSQL, else None."""
    query = queryset.query
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or query.where or query.distinct or query.combinator or query.is_sliced:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table])
        row = cursor.fetchone()
    return row[0] if row and row[0] >= 0 else None  # -1: never analysed


class CappedCountPaginator(Paginator):
    cap = COUNT_CAP

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_estimate = False

    @cached_property
    def count(self) -> int:
        object_list = self.object_list
        if not isinstance(object_list, QuerySet):
            return super().count
        estimate = estimated_rows(object_list)
        if estimate is not None and estimate > self.cap:
            self.is_estimate = True
            return estimate
        counted = object_list.order_by()[: self.cap + 1].count()
        if counted > self.cap:
            self.is_estimate = True  # "more than cap": the pages stop there; filters narrow it
        return counted

    @cached_property
    def num_pages(self) -> int:
        """Past the cap, pages stop at the cap: an OFFSET of millions reads millions of rows
        (the API's cursor reaches further)."""
        pages = super().num_pages
        return min(pages, max(1, self.cap // self.per_page)) if self.is_estimate else pages
