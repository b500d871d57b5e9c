"""Outbound webhooks: endpoints that other systems register, and the deliveries made to them.

One `WebhookDelivery` row is one event for one endpoint; its `webhook_id` (the Standard
Webhooks `webhook-id`) and its `body` are fixed when the row is written, so every retry and
every replay sends the same bytes under the same id. A delivery of an event type registered
as secret stores its body sealed (`is_sealed`): only the request on the wire opens it. Each attempt leaves a `WebhookAttempt`
(the delivery log). The endpoint's signing secret is stored sealed (messaging.secrets) and
shown only once, when the endpoint is created.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class WebhookEndpoint(models.Model):
    name = models.CharField(_("name"), max_length=100, help_text=_("Which system receives these events, e.g. “CRM”."))
    url = models.URLField(_("URL"), max_length=500, help_text=_("An https:// (or http://) address on the public internet."))
    event_types = models.JSONField(_("event types"), default=list, help_text=_("The events sent to this endpoint."))
    sealed_secret = models.TextField(editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0, editable=False)
    disabled_at = models.DateTimeField(_("disabled"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(_("why it was disabled"), max_length=300, blank=True, editable=False)
    # One worker at a time sends to an endpoint, oldest delivery first (per-endpoint order).
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint"))
    event_type = models.CharField(_("event type"), max_length=64)
    webhook_id = models.CharField(_("webhook id"), max_length=64, unique=True)
    body = models.TextField(_("body"))
    is_sealed = models.BooleanField(_("body sealed"), default=False, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last response code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["endpoint", "status", "id"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint.name} ({self.webhook_id})"  # lists select the endpoint


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log", verbose_name=_("delivery"))
    attempted_at = models.DateTimeField(_("attempted"), auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    replay = models.BooleanField(_("manual replay"), default=False)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.attempted_at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error[:60]}"
