"""django-q2 entry points. Thin: they take ids and plain data and call actions."""

from django.utils import timezone


def heartbeat() -> str:
    """Runs every minute; `manage.py doctor` reads its last success to know a cluster is alive."""
    return timezone.now().isoformat()
