"""Referrals in the console: program settings, the referrals list, rejection with a reason,
and referral coupons (upload a pool; codes are never shown back, only •••• last 4)."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter, RelatedDropdownFilter
from unfold.decorators import action
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget

from growth import policies
from growth.admin.common import ReasonDialogForm, run_action, summary_link
from growth.coupons import MAX_UPLOAD, pool_counts, referrals_waiting_for_codes, upload_coupon_codes
from growth.models import CouponCode, CouponSource, Referral, ReferralCode, ReferralProgram, ReferralReward
from growth.referrals import reject_referral
from messaging.admin.base import AuditedModelAdmin, ReadOnlyAdmin
from messaging.errors import MailroomError

MAX_FILE_BYTES = 2 * 1024 * 1024


class CouponUploadForm(forms.Form):
    role = forms.ChoiceField(label=_("Pool"), choices=ReferralReward.Role.choices, widget=UnfoldAdminSelectWidget)
    codes = forms.CharField(
        label=_("Codes"),
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 10, "autocomplete": "off", "spellcheck": "false"}),
        help_text=_("One code per line; blank lines and repeated codes are skipped."),
    )
    file = forms.FileField(
        label=_("Or a file"), required=False, widget=UnfoldAdminFileFieldWidget, help_text=_("A .txt or .csv file, one code per line.")
    )

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_FILE_BYTES:
                raise forms.ValidationError(_("The file is too large (at most 2 MB)."))
            try:
                data["codes"] = "\n".join(filter(None, [data.get("codes", ""), upload.read().decode("utf-8-sig")]))
            except UnicodeDecodeError:
                raise forms.ValidationError(_("The file must be UTF-8 text, one code per line.")) from None
        if not (data.get("codes") or "").strip():
            raise forms.ValidationError(_("Paste the codes or choose a file."))
        return data


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
            {
                "fields": (
                    "referrer_reward_kind",
                    "referrer_reward_value",
                    "referrer_coupon",
                    "friend_reward_kind",
                    "friend_reward_value",
                    "friend_coupon",
                    "coupon_prefix",
                    "coupon_pool",
                    "minimum_purchase",
                )
            },
        ),
        (_("Fraud rules and expiry"), {"fields": ("shared_signup_threshold", "shared_signup_window_hours", "expiry_days")}),
    )
    readonly_fields = ("coupon_pool",)
    actions_detail = ["upload_coupons"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # end it instead: codes and referrals point at it

    @admin.display(description=_("coupon pools"))
    def coupon_pool(self, obj: ReferralProgram) -> str:
        if obj.pk is None:
            return "-"
        counts = pool_counts(obj)
        parts = [
            gettext("%(role)s: %(available)d available, %(issued)d issued, %(revoked)d revoked")
            % {"role": ReferralReward.Role(role).label, **counts[role]}
            for role in ReferralReward.Role.values
        ]
        waiting = referrals_waiting_for_codes(obj)
        if waiting:
            parts.append(gettext("%(count)d qualified referrals wait for coupon codes: upload more.") % {"count": waiting})
        return format_html("{}", " · ".join(parts))

    def has_upload_coupons_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_upload_coupons(request.user)

    @action(description=_("Upload coupon codes"), icon="upload", permissions=["upload_coupons"])
    def upload_coupons(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The host's single-use codes for one side's pool: pasted or a file, all or nothing."""
        program = get_object_or_404(ReferralProgram, pk=object_id)
        request.sensitive_post_parameters = ["codes"]  # never in an error report
        form = CouponUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = upload_coupon_codes(actor=request.user, program=program, role=data["role"], text=data["codes"])
            except MailroomError as error:
                form.add_error("codes", str(error))
            else:
                messages.success(
                    request,
                    gettext("%(added)d codes added to the pool; %(skipped)d skipped as duplicates.")
                    % {"added": result.added, "skipped": result.duplicates},
                )
                return redirect("admin:growth_referralprogram_change", program.pk)
        if request.method == "POST":
            form.data = form.data.copy()
            form.data["codes"] = ""  # the codes are never echoed back into the page
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload coupon codes for “%(program)s”") % {"program": program.name},
            "form": form,
            "opts": self.model._meta,
            "program": program,
            "max_upload": MAX_UPLOAD,
            "uses_pool": CouponSource.POOL in (program.referrer_coupon, program.friend_coupon),
        }
        response = TemplateResponse(
            request, "console/growth/coupon_codes_upload.html", context, status=400 if request.method == "POST" else 200
        )
        response["Cache-Control"] = "no-store"
        return response


class RewardInline(TabularInline):
    model = ReferralReward
    extra = 0
    can_delete = False
    fields = ("role", "contact", "kind", "value", "currency", "coupon_summary", "created_at", "reversed_at")
    readonly_fields = fields

    @admin.display(description=_("coupon"))
    def coupon_summary(self, obj: ReferralReward) -> str:
        coupon = CouponCode.objects.filter(reward=obj).first()
        return f"{coupon} ({coupon.get_status_display()})" if coupon else "-"

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


@admin.register(CouponCode)
class CouponCodeAdmin(ReadOnlyAdmin):
    """Coupons as staff may see them: •••• last 4, where they came from, whom they went to."""

    list_display = ("__str__", "program", "role", "source", "status", "reward_contact", "created_at", "issued_at", "revoked_at")
    list_filter = (
        ("program", RelatedDropdownFilter),
        ("role", ChoicesDropdownFilter),
        ("source", ChoicesDropdownFilter),
        ("status", ChoicesDropdownFilter),
    )
    list_filter_submit = True
    search_fields = ("last4", "reward__contact__email")
    list_select_related = ("program", "reward__contact")
    show_full_result_count = False
    fields = (
        "masked",
        "program",
        "role",
        "source",
        "status",
        "reward",
        "reward_contact",
        "uploaded_by",
        "created_at",
        "issued_at",
        "revoked_at",
    )
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policies.can_view_coupons(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return policies.can_view_coupons(request.user)

    @admin.display(description=_("code"))
    def masked(self, obj: CouponCode) -> str:
        return str(obj)

    @admin.display(description=_("contact"))
    def reward_contact(self, obj: CouponCode) -> str:
        return summary_link(obj.reward.contact) if obj.reward_id else "-"
