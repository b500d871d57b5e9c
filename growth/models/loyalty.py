"""Loyalty: a program with tiers, one account per contact, an append-only points ledger."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from growth.models.ledger import AppendOnlyModel
from messaging.models import Contact


class LoyaltyProgram(models.Model):
    name = models.CharField(_("name"), max_length=120)
    is_active = models.BooleanField(_("active"), default=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    points_per_unit = models.DecimalField(
        _("points per currency unit"),
        max_digits=8,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Points earned for each unit of the currency spent (before the tier multiplier)."),
    )
    redemption_rate = models.PositiveIntegerField(
        _("points per currency unit redeemed"),
        default=100,
        validators=[MinValueValidator(1)],
        help_text=_("How many points buy one unit of the currency, e.g. 100 points = 1 EUR."),
    )
    expiry_months = models.PositiveIntegerField(_("points expire after (months)"), default=12, help_text=_("0 means points never expire."))
    warning_days = models.PositiveIntegerField(_("warn this many days before expiry"), default=30)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("loyalty program")
        verbose_name_plural = _("loyalty programs")
        ordering = ["-is_active", "name"]

    def __str__(self) -> str:
        return self.name


class LoyaltyTier(models.Model):
    program = models.ForeignKey(LoyaltyProgram, on_delete=models.CASCADE, related_name="tiers", verbose_name=_("program"))
    name = models.CharField(_("name"), max_length=60)
    threshold = models.PositiveIntegerField(_("lifetime points needed"), default=0)
    multiplier = models.DecimalField(
        _("earning multiplier"), max_digits=4, decimal_places=2, default=Decimal("1"), validators=[MinValueValidator(Decimal("0"))]
    )

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["program", "threshold"]
        constraints = [models.UniqueConstraint(fields=["program", "threshold"], name="loyalty_tier_threshold_unique")]

    def __str__(self) -> str:
        return self.name


class LoyaltyAccount(models.Model):
    """The balance is kept in step with the ledger in the same transaction, under a row lock."""

    program = models.ForeignKey(LoyaltyProgram, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("program"))
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="loyalty_accounts", verbose_name=_("contact"))
    balance = models.IntegerField(_("points balance"), default=0)
    lifetime_points = models.IntegerField(_("lifetime points"), default=0)
    tier = models.ForeignKey(LoyaltyTier, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("tier"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("loyalty account")
        verbose_name_plural = _("loyalty accounts")
        ordering = ["-updated_at", "-id"]
        permissions = [("adjust_loyaltyaccount", _("Can adjust loyalty points"))]
        constraints = [
            models.UniqueConstraint(fields=["program", "contact"], name="loyalty_account_one_per_contact"),
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="loyalty_balance_never_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} · {self.program}"


class LoyaltyTransaction(AppendOnlyModel):
    class Kind(models.TextChoices):
        EARNED = "earned", _("Earned")
        REDEEMED = "redeemed", _("Redeemed")
        EXPIRED = "expired", _("Expired")
        ADJUSTED = "adjusted", _("Adjusted")
        REVERSED = "reversed", _("Reversed")

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.PROTECT, related_name="transactions", verbose_name=_("account"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    points = models.IntegerField(_("points"), help_text=_("Positive for credits, negative for debits."))
    balance_after = models.IntegerField(_("balance after"))
    order_reference = models.CharField(_("order"), max_length=128, blank=True, default="")
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True, null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("loyalty transaction")
        verbose_name_plural = _("loyalty ledger")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "kind", "expires_at"])]
        constraints = [
            # One credit and one reversal per order and account, whatever the event replays.
            models.UniqueConstraint(
                fields=["account", "kind", "order_reference"],
                condition=~models.Q(order_reference=""),
                name="loyalty_one_entry_per_order_and_kind",
            ),
            models.CheckConstraint(condition=models.Q(balance_after__gte=0), name="loyalty_ledger_balance_never_negative"),
            models.CheckConstraint(condition=~models.Q(points=0), name="loyalty_ledger_points_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+d}"
