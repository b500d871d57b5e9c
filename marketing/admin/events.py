"""What contacts did: events and orders, read-only in the console (they come from the
host application through the API and signals)."""

from django.contrib import admin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateTimeFilter

from marketing.models import Event, Order
from messaging.admin.base import ReadOnlyAdmin


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("name", "contact", "occurred_at", "source")
    list_filter = ("name", ("occurred_at", RangeDateTimeFilter))
    list_filter_submit = True
    search_fields = ("name", "contact__email", "idempotency_key")
    list_select_related = ("contact",)
    show_full_result_count = False
    readonly_fields = ("contact", "name", "properties", "occurred_at", "idempotency_key", "source", "received_at")


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "contact", "amount", "currency", "status", "placed_at")
    list_filter = (("status", ChoicesDropdownFilter), ("placed_at", RangeDateTimeFilter))
    list_filter_submit = True
    search_fields = ("external_id", "contact__email")
    list_select_related = ("contact",)
    readonly_fields = ("contact", "external_id", "amount", "currency", "status", "placed_at", "paid_at", "details", "updated_at")
