"""Referrals in the console: program settings, the referrals list, rejection with a reason."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter, RelatedDropdownFilter
from unfold.decorators import action

from growth import policies
from growth.admin.common import ReasonDialogForm, run_action, summary_link
from growth.models import Referral, ReferralCode, ReferralProgram, ReferralReward
from growth.referrals import reject_referral
from messaging.admin.base import AuditedModelAdmin, ReadOnlyAdmin


@admin.register(ReferralProgram)
class ReferralProgramAdmin(AuditedModelAdmin):
    list_display = (
        "name",
        "is_active",
        "starts_at",
        "ends_at",
        "referrer_reward_kind",
        "referrer_reward_value",
        "friend_reward_kind",
        "friend_reward_value",
    )
    list_filter = ("is_active",)
    fieldsets = (
        (None, {"fields": ("name", "is_active", "starts_at", "ends_at", "currency")}),
        (
            _("Rewards"),
            {"fields": ("referrer_reward_kind", "referrer_reward_value", "friend_reward_kind", "friend_reward_value", "minimum_purchase")},
        ),
        (_("Fraud rules and expiry"), {"fields": ("shared_signup_threshold", "shared_signup_window_hours", "expiry_days")}),
    )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # end it instead: codes and referrals point at it


class RewardInline(TabularInline):
    model = ReferralReward
    extra = 0
    can_delete = False
    fields = ("role", "contact", "kind", "value", "currency", "created_at", "reversed_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "referrer", "friend", "status", "rejection_reason", "order_reference", "signup_ip", "rewarded_at")
    list_filter = (
        ("status", ChoicesDropdownFilter),
        ("rejection_reason", ChoicesDropdownFilter),
        ("program", RelatedDropdownFilter),
        ("created_at", RangeDateFilter),
    )
    list_filter_submit = True
    search_fields = ("referrer__email", "friend__email", "code__code", "order_reference", "signup_ip")
    list_select_related = ("referrer", "friend")
    show_full_result_count = False
    fields = (
        "program",
        "code",
        "referrer_summary",
        "friend_summary",
        "status",
        "rejection_reason",
        "note",
        "signup_ip",
        "device_id",
        "order_reference",
        "order_amount",
        "expires_at",
        "created_at",
        "qualified_at",
        "rewarded_at",
        "closed_at",
        "closed_by",
    )
    readonly_fields = fields
    inlines = [RewardInline]
    actions_detail = ["reject"]

    @admin.display(description=_("referrer"))
    def referrer_summary(self, obj: Referral) -> str:
        return summary_link(obj.referrer)

    @admin.display(description=_("friend"))
    def friend_summary(self, obj: Referral) -> str:
        return summary_link(obj.friend)

    def has_reject_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_reject_referrals(request.user)

    @action(
        description=_("Reject"),
        icon="block",
        permissions=["reject"],
        dialog={
            "title": _("Reject this referral?"),
            "description": _("Neither side will be rewarded. Only a pending or qualified referral can be rejected."),
            "form_class": ReasonDialogForm,
            "form_submit_text": _("Reject"),
        },
    )
    def reject(self, request: HttpRequest, form: ReasonDialogForm, object_id: str) -> HttpResponse:
        referral = get_object_or_404(Referral, pk=object_id)
        return run_action(
            request,
            lambda: reject_referral(referral=referral, reason=form.cleaned_data["reason"], actor=request.user),
            success=_("Referral rejected."),
            url=reverse("admin:growth_referral_change", args=[referral.pk]),
        )


@admin.register(ReferralCode)
class ReferralCodeAdmin(ReadOnlyAdmin):
    list_display = ("code", "contact", "program", "created_at")
    search_fields = ("code", "contact__email")
    list_select_related = ("contact", "program")
    show_full_result_count = False
