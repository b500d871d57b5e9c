"""The API's pages: ?page=2&page_size=100 (capped by MAILROOM_API_MAX_PAGE_SIZE), and for
going deep, a keyset cursor.

A page number costs an OFFSET: page 90,000 of the outbox makes PostgreSQL walk 4.5 million
index entries. So counts are capped (messaging.paging: the planner's estimate on an unfiltered
table, `count_is_estimate` says so), page numbers stop at the cap, and the `next` link of the
last numbered page (or any page, with `?cursor=`) is a keyset cursor: DRF's CursorPagination,
which reads "the rows after this one" straight from the ordering's index, as cheap at row five
million as at row fifty.
"""

from django.conf import settings
from rest_framework import pagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param

from messaging.paging import CappedCountPaginator


class KeysetPagination(pagination.CursorPagination):
    ordering = "-id"  # when the view names none
    page_size_query_param = "page_size"

    def get_page_size(self, request):
        self.page_size = settings.MAILROOM_API_PAGE_SIZE
        self.max_page_size = settings.MAILROOM_API_MAX_PAGE_SIZE
        return super().get_page_size(request)

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "ordering", None) or self.ordering
        chosen = request.query_params.get("ordering")
        if chosen and view is not None:
            # The list's ?ordering= (validated by its OrderingFilter) with the id as tie-breaker.
            fields = [f.strip() for f in chosen.split(",") if f.strip().lstrip("-") in (getattr(view, "ordering_fields", None) or [])]
            if fields:
                ordering = [*fields, "-id" if fields[0].startswith("-") else "id"]
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def link_after(self, request, queryset, view, rows: list) -> str | None:
        """A cursor link to the rows after `rows` (a numbered page's last row)."""
        if not rows:
            return None
        self.base_url = remove_query_param(request.build_absolute_uri(), "page")
        self.ordering = self.get_ordering(request, queryset, view)
        # As DRF marks a page: the last row whose position differs from the rows after it;
        # the trailing rows that share one position are skipped by the offset.
        last = self._get_position_from_instance(rows[-1], self.ordering)
        offset, marker = 0, last
        for row in reversed(rows):
            position = self._get_position_from_instance(row, self.ordering)
            if position != last:
                marker = position
                break
            offset += 1
        else:  # one position throughout (ties on a non-unique ordering): rows after it may tie too
            offset = 0
        return self.encode_cursor(pagination.Cursor(offset=offset, reverse=False, position=marker))


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    django_paginator_class = CappedCountPaginator

    def get_page_size(self, request):
        self.page_size = settings.MAILROOM_API_PAGE_SIZE
        self.max_page_size = settings.MAILROOM_API_MAX_PAGE_SIZE
        return super().get_page_size(request)

    def paginate_queryset(self, queryset, request, view=None):
        self.keyset = None
        self.cursor_next = None
        if request.query_params.get("cursor"):
            self.keyset = KeysetPagination()
            return self.keyset.paginate_queryset(queryset, request, view)
        rows = super().paginate_queryset(queryset, request, view)
        paginator = self.page.paginator
        if paginator.is_estimate and not self.page.has_next() and rows:
            self.cursor_next = KeysetPagination().link_after(request, queryset, view, rows)
        return rows

    def get_paginated_response(self, data):
        if self.keyset is not None:
            return Response(
                {
                    "count": None,
                    "count_is_estimate": True,
                    "next": self.keyset.get_next_link(),
                    "previous": self.keyset.get_previous_link(),
                    "results": data,
                }
            )
        return Response(
            {
                "count": self.page.paginator.count,
                "count_is_estimate": self.page.paginator.is_estimate,
                "next": self.get_next_link() or self.cursor_next,
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        described = super().get_paginated_response_schema(schema)
        described["properties"]["count"]["nullable"] = True
        described["properties"]["count"]["description"] = (
            "Rows in the list; past 10,000 an estimate (see count_is_estimate); none when reading by cursor."
        )
        described["properties"]["count_is_estimate"] = {"type": "boolean"}
        described["properties"]["next"]["description"] = (
            "The next page: a page number, or past the counted pages a keyset cursor (?cursor=), as cheap at any depth."
        )
        return described
