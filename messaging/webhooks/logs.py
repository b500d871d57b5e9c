"""Housekeeping of the webhook delivery log (run by the daily "clean delivery logs" job)."""

from datetime import timedelta

from django.utils import timezone

from messaging.models import WebhookDelivery


def delete_old_deliveries(*, days: int) -> int:
    """Delivered or failed deliveries older than `days` go, with their attempts; pending ones stay."""
    finished = WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.PENDING)
    deleted, _ = finished.filter(created_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
