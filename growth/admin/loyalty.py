"""Loyalty in the console: program and tiers, accounts with their ledger, staff adjustments."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter, RelatedDropdownFilter
from unfold.decorators import action

from growth import policies
from growth.admin.common import AdjustPointsForm, run_action, summary_link
from growth.loyalty import adjust_points
from growth.models import LoyaltyAccount, LoyaltyProgram, LoyaltyTier, LoyaltyTransaction
from messaging.admin.base import AuditedModelAdmin, ReadOnlyAdmin, ReadOnlyInline


class TierInline(TabularInline):
    model = LoyaltyTier
    extra = 0
    fields = ("name", "threshold", "multiplier")


@admin.register(LoyaltyProgram)
class LoyaltyProgramAdmin(AuditedModelAdmin):
    list_display = ("name", "is_active", "currency", "points_per_unit", "redemption_rate", "expiry_months", "warning_days")
    list_filter = ("is_active",)
    inlines = [TierInline]
    fieldsets = (
        (None, {"fields": ("name", "is_active", "currency")}),
        (_("Earning and spending"), {"fields": ("points_per_unit", "redemption_rate")}),
        (_("Expiry"), {"fields": ("expiry_months", "warning_days")}),
    )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # deactivate instead: accounts and ledgers point at it


class LedgerInline(ReadOnlyInline):
    model = LoyaltyTransaction
    fields = ("created_at", "kind", "points", "balance_after", "order_reference", "reason", "actor", "expires_at")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    per_page = 20
    verbose_name_plural = _("ledger")


@admin.register(LoyaltyAccount)
class LoyaltyAccountAdmin(ReadOnlyAdmin):
    list_display = ("contact", "program", "balance", "lifetime_points", "tier", "updated_at")
    list_filter = (("program", RelatedDropdownFilter), ("tier", RelatedDropdownFilter))
    list_filter_submit = True
    search_fields = ("contact__email", "contact__phone", "contact__external_id")
    list_select_related = ("contact", "program", "tier")
    show_full_result_count = False
    fields = ("growth_summary", "program", "balance", "lifetime_points", "tier", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [LedgerInline]
    actions_detail = ["adjust"]

    @admin.display(description=_("contact"))
    def growth_summary(self, obj: LoyaltyAccount) -> str:
        return summary_link(obj.contact)

    def has_adjust_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_adjust_points(request.user)

    @action(
        description=_("Adjust points"),
        icon="tune",
        permissions=["adjust"],
        dialog={
            "title": _("Adjust points"),
            "description": _("A correction is written to the ledger with your name and reason. The balance never goes below zero."),
            "form_class": AdjustPointsForm,
            "form_submit_text": _("Adjust"),
        },
    )
    def adjust(self, request: HttpRequest, form: AdjustPointsForm, object_id: str) -> HttpResponse:
        account = get_object_or_404(LoyaltyAccount, pk=object_id)
        return run_action(
            request,
            lambda: adjust_points(
                account=account, points=form.cleaned_data["points"], reason=form.cleaned_data["reason"], actor=request.user
            ),
            success=_("Points adjusted."),
            url=reverse("admin:growth_loyaltyaccount_change", args=[account.pk]),
        )


@admin.register(LoyaltyTransaction)
class LoyaltyTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "kind", "points", "balance_after", "order_reference", "reason", "actor")
    list_filter = (("kind", ChoicesDropdownFilter), ("account__program", RelatedDropdownFilter), ("created_at", RangeDateFilter))
    list_filter_submit = True
    search_fields = ("account__contact__email", "order_reference", "idempotency_key", "reason")
    list_select_related = ("account__contact", "account__program", "actor")
    show_full_result_count = False
