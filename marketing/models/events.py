"""What contacts do, as told by the host application: events and the orders mirror."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models import Contact


class Event(models.Model):
    """One thing a contact did. The idempotency key makes a replayed delivery a no-op."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events", verbose_name=_("contact"))
    name = models.CharField(_("name"), max_length=100)
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True, null=True, blank=True)
    source = models.CharField(_("source"), max_length=32, default="api")
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["contact", "name", "occurred_at"]),
            models.Index(fields=["name", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} · {self.contact}"


class Order(models.Model):
    """A mirror of the host shop's orders: enough for revenue, LTV, conversions and loyalty."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        FULFILLED = "fulfilled", _("Fulfilled")
        PAYMENT_FAILED = "payment_failed", _("Payment failed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    # Orders that count as revenue: paid and, later, fulfilled.
    REVENUE_STATUSES = (Status.PAID, Status.FULFILLED)

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="orders", verbose_name=_("contact"))
    external_id = models.CharField(_("order id"), max_length=128, unique=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    placed_at = models.DateTimeField(_("placed at"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-placed_at", "-id"]
        indexes = [models.Index(fields=["contact", "status", "placed_at"])]

    def __str__(self) -> str:
        return f"{self.external_id} · {self.amount} {self.currency}"
