"""Gift cards: the code is shown once and stored hashed; the balance never goes below zero."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from growth.models.ledger import AppendOnlyModel
from messaging.models import Contact


class GiftCard(models.Model):
    """Cards are disabled, never deleted: their ledger is the history of money."""

    code_hash = models.CharField(_("code hash"), max_length=64, unique=True, editable=False)
    last4 = models.CharField(_("last 4"), max_length=4, db_index=True)
    initial_amount = models.DecimalField(_("initial amount"), max_digits=12, decimal_places=2)
    balance = models.DecimalField(_("balance"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True, db_index=True)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True)
    disabled_reason = models.CharField(_("why disabled"), max_length=300, blank=True)
    recipient = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.PROTECT, related_name="gift_cards", verbose_name=_("recipient")
    )
    sender_name = models.CharField(_("from"), max_length=120, blank=True)
    message = models.CharField(_("message"), max_length=500, blank=True)
    batch = models.CharField(_("batch"), max_length=64, blank=True, db_index=True)
    issue_key = models.CharField(_("idempotency key"), max_length=200, unique=True, null=True, blank=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("issued by")
    )
    created_at = models.DateTimeField(_("issued"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("gift card")
        verbose_name_plural = _("gift cards")
        ordering = ["-created_at", "-id"]
        permissions = [("issue_giftcard", _("Can issue gift cards")), ("disable_giftcard", _("Can disable gift cards"))]
        constraints = [
            models.CheckConstraint(condition=models.Q(balance__gte=0), name="giftcard_balance_never_negative"),
            models.CheckConstraint(condition=models.Q(initial_amount__gt=0), name="giftcard_initial_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"•••• {self.last4}"


class GiftCardTransaction(AppendOnlyModel):
    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        REDEMPTION = "redemption", _("Redemption")
        REFUND = "refund", _("Refund")
        EXPIRY = "expiry", _("Expiry")

    card = models.ForeignKey(GiftCard, on_delete=models.PROTECT, related_name="transactions", verbose_name=_("gift card"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2, help_text=_("Positive for credits, negative for debits."))
    balance_after = models.DecimalField(_("balance after"), max_digits=12, decimal_places=2)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    order_reference = models.CharField(_("order"), max_length=128, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("by")
    )
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("gift card transaction")
        verbose_name_plural = _("gift card ledger")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(balance_after__gte=0), name="giftcard_ledger_balance_never_negative"),
            models.CheckConstraint(condition=~models.Q(amount=0), name="giftcard_ledger_amount_not_zero"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+} {self.card.currency}"


class GiftCardAttempt(models.Model):
    """One redemption attempt, kept to throttle guessing per client and per card."""

    # "key:<id>", "user:<id>" or "ip:<address>", plus ":customer:<hash>" when the caller
    # names its customer (growth.giftcards.attempt_client).
    client = models.CharField(_("client"), max_length=100, blank=True, default="")
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    card = models.ForeignKey(
        GiftCard, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts", verbose_name=_("gift card")
    )
    succeeded = models.BooleanField(_("succeeded"), default=False)
    error_code = models.CharField(_("error"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("gift card attempt")
        verbose_name_plural = _("gift card attempts")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["ip_address", "created_at"]),
            models.Index(fields=["card", "created_at"]),
            models.Index(fields=["client", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.client or self.ip_address or '-'} · {'ok' if self.succeeded else self.error_code}"
