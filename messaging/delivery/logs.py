"""Housekeeping of the append-only delivery logs."""

from datetime import timedelta

from django.utils import timezone

from messaging.models import DeliveryAttempt


def delete_old_attempts(*, days: int) -> int:
    """Attempt rows older than `days` go; message statuses and events stay."""
    deleted, _ = DeliveryAttempt.objects.filter(created_at__lt=timezone.now() - timedelta(days=days)).delete()
    return deleted
