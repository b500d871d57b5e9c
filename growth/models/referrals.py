"""Referrals: one shareable code per contact and program; one referral per invited friend."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models import Contact


class RewardKind(models.TextChoices):
    PERCENT = "percent", _("Percent off")
    FIXED = "fixed", _("Fixed amount off")
    POINTS = "points", _("Loyalty points")


class CouponSource(models.TextChoices):
    """Where a discount reward's single-use code comes from (growth.models.coupons)."""

    NONE = "", _("No code (the shop applies the discount)")
    GENERATED = "generated", _("A code Mailroom generates")
    POOL = "pool", _("A code from the uploaded pool")


class ReferralProgram(models.Model):
    name = models.CharField(_("name"), max_length=120)
    is_active = models.BooleanField(_("active"), default=True)
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    referrer_reward_kind = models.CharField(_("referrer reward"), max_length=10, choices=RewardKind.choices, default=RewardKind.POINTS)
    referrer_reward_value = models.DecimalField(
        _("referrer reward value"), max_digits=10, decimal_places=2, default=Decimal("500"), validators=[MinValueValidator(Decimal("0"))]
    )
    friend_reward_kind = models.CharField(_("friend reward"), max_length=10, choices=RewardKind.choices, default=RewardKind.PERCENT)
    friend_reward_value = models.DecimalField(
        _("friend reward value"), max_digits=10, decimal_places=2, default=Decimal("10"), validators=[MinValueValidator(Decimal("0"))]
    )
    referrer_coupon = models.CharField(
        _("referrer coupon code"),
        max_length=10,
        choices=CouponSource.choices,
        blank=True,
        default="",
        help_text=_("For a percent or fixed discount: hand out a single-use code the shop honours, shown in the reward email."),
    )
    friend_coupon = models.CharField(
        _("friend coupon code"),
        max_length=10,
        choices=CouponSource.choices,
        blank=True,
        default="",
        help_text=_("For a percent or fixed discount: the friend gets a single-use code by email."),
    )
    coupon_prefix = models.CharField(
        _("generated code prefix"),
        max_length=10,
        blank=True,
        default="",
        validators=[RegexValidator(r"^[A-Z0-9]*$", _("Capital letters and digits only."))],
        help_text=_("Generated codes look like REF-XXXX-XXXX-XXXX with the prefix REF."),
    )
    minimum_purchase = models.DecimalField(
        _("minimum purchase"), max_digits=10, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    expiry_days = models.PositiveIntegerField(
        _("a pending referral expires after (days)"), default=90, help_text=_("0 means pending referrals never expire.")
    )
    shared_signup_threshold = models.PositiveIntegerField(
        _("referrals allowed from one IP or device"),
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("Sign-ups beyond this number from the same IP address or device within the window are rejected."),
    )
    shared_signup_window_hours = models.PositiveIntegerField(_("window (hours)"), default=24, validators=[MinValueValidator(1)])
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("referral program")
        verbose_name_plural = _("referral programs")
        ordering = ["-is_active", "name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__isnull=True) | models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=models.F("starts_at")),
                name="referral_program_window_ordered",
            ),
            models.CheckConstraint(
                condition=~models.Q(referrer_reward_kind="percent", referrer_reward_value__gt=100)
                & ~models.Q(friend_reward_kind="percent", friend_reward_value__gt=100),
                name="referral_program_percent_at_most_100",
            ),
            models.CheckConstraint(
                condition=~models.Q(referrer_reward_kind="points", referrer_coupon__gt="")
                & ~models.Q(friend_reward_kind="points", friend_coupon__gt=""),
                name="referral_program_coupon_only_for_discounts",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        errors = {}
        for side in ("referrer", "friend"):
            if getattr(self, f"{side}_coupon") and getattr(self, f"{side}_reward_kind") == RewardKind.POINTS:
                errors[f"{side}_coupon"] = _("A coupon code represents a discount: choose percent or fixed amount off.")
        if errors:
            raise ValidationError(errors)

    def coupon_source(self, role: str) -> str:
        """The coupon source for one side ("" when that side gets no code)."""
        return getattr(self, f"{role}_coupon")


class ReferralCode(models.Model):
    """A contact's shareable code ("my code")."""

    program = models.ForeignKey(ReferralProgram, on_delete=models.PROTECT, related_name="codes", verbose_name=_("program"))
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="referral_codes", verbose_name=_("contact"))
    code = models.CharField(_("code"), max_length=16, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("referral code")
        verbose_name_plural = _("referral codes")
        constraints = [models.UniqueConstraint(fields=["program", "contact"], name="referral_one_code_per_contact")]

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        QUALIFIED = "qualified", _("Qualified")
        REWARDED = "rewarded", _("Rewarded")
        REJECTED = "rejected", _("Rejected")
        REVERSED = "reversed", _("Reversed")
        EXPIRED = "expired", _("Expired")

    # The state machine, in one place: from -> allowed next states.
    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.PENDING: frozenset({Status.QUALIFIED, Status.REJECTED, Status.EXPIRED}),
        Status.QUALIFIED: frozenset({Status.REWARDED, Status.REJECTED}),
        Status.REWARDED: frozenset({Status.REVERSED}),
        Status.REJECTED: frozenset(),
        Status.REVERSED: frozenset(),
        Status.EXPIRED: frozenset(),
    }

    class Reason(models.TextChoices):
        SHARED_IP_OR_DEVICE = "shared_ip_or_device", _("Too many sign-ups from one IP address or device")
        SELF_REFERRAL = "self_referral", _("Self-referral")
        REFUNDED = "refunded", _("Qualifying order refunded")
        STAFF = "staff", _("Rejected by staff")

    program = models.ForeignKey(ReferralProgram, on_delete=models.PROTECT, related_name="referrals", verbose_name=_("program"))
    code = models.ForeignKey(ReferralCode, on_delete=models.PROTECT, related_name="referrals", verbose_name=_("code"))
    referrer = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="referrals_made", verbose_name=_("referrer"))
    friend = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="referrals_received", verbose_name=_("friend"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    rejection_reason = models.CharField(_("rejection reason"), max_length=24, choices=Reason.choices, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    signup_ip = models.GenericIPAddressField(_("sign-up IP"), null=True, blank=True)
    device_id = models.CharField(_("device"), max_length=64, blank=True)
    order_reference = models.CharField(_("qualifying order"), max_length=128, blank=True, db_index=True)
    order_amount = models.DecimalField(_("order amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("signed up"), auto_now_add=True, db_index=True)
    qualified_at = models.DateTimeField(_("qualified"), null=True, blank=True)
    rewarded_at = models.DateTimeField(_("rewarded"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("closed by")
    )

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-created_at", "-id"]
        permissions = [("reject_referral", _("Can reject referrals"))]
        indexes = [models.Index(fields=["program", "signup_ip", "created_at"]), models.Index(fields=["program", "device_id", "created_at"])]
        constraints = [
            # A friend is referred once per program: the first code wins.
            models.UniqueConstraint(fields=["program", "friend"], name="referral_one_per_friend"),
            models.CheckConstraint(condition=~models.Q(referrer=models.F("friend")), name="referral_not_self"),
        ]

    def __str__(self) -> str:
        return f"{self.referrer} → {self.friend}"


class ReferralReward(models.Model):
    """What a referral earned one side. Points land in the loyalty ledger; discounts are
    entitlements the shop applies (percent or fixed amount)."""

    class Role(models.TextChoices):
        REFERRER = "referrer", _("Referrer")
        FRIEND = "friend", _("Friend")

    referral = models.ForeignKey(Referral, on_delete=models.PROTECT, related_name="rewards", verbose_name=_("referral"))
    role = models.CharField(_("for"), max_length=10, choices=Role.choices)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="referral_rewards", verbose_name=_("contact"))
    kind = models.CharField(_("kind"), max_length=10, choices=RewardKind.choices)
    value = models.DecimalField(_("value"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    reversed_at = models.DateTimeField(_("reversed"), null=True, blank=True)

    class Meta:
        verbose_name = _("referral reward")
        verbose_name_plural = _("referral rewards")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["referral", "role"], name="referral_one_reward_per_side")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} · {self.get_kind_display()} {self.value}"
