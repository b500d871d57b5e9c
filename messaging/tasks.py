"""django-q2 entry points. Thin: they take ids and plain data and call actions."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging import digest, import_jobs, mailbox, verification
from messaging.attachments import delete_orphaned_files
from messaging.delivery import inbound, logs, retention
from messaging.delivery.sending import send_due_messages
from messaging.delivery.work import until_kick_window_closes
from messaging.signup.actions import delete_expired_signups
from messaging.webhooks import logs as webhook_logs
from messaging.webhooks.dispatch import send_due_webhooks

logger = logging.getLogger(__name__)

DRAIN_TIME_BUDGET = 50.0  # seconds; under the cluster timeout, so a drain never gets killed


def refuse_unregistered_job(*, func: str) -> None:
    """What the cluster runs instead of a function Mailroom does not register (see
    messaging.schedules.guard_enqueue): it fails, so the refusal is on record."""
    raise PermissionError(_("Refused to run %(func)s: it is not a registered Mailroom job.") % {"func": func})


def heartbeat() -> str:
    """Runs every minute; `manage.py doctor` reads its last success to know a cluster is alive."""
    return timezone.now().isoformat()


def send_webhooks(*, limit: int = 1000, kicked_at: float | None = None) -> int:
    """Send due outbound webhooks, per endpoint in order; kicked after an event and every minute."""
    return until_kick_window_closes(
        lambda budget: send_due_webhooks(limit=limit, time_budget=budget), kicked_at=kicked_at, time_budget=DRAIN_TIME_BUDGET
    )


def drain_outbox(*, channel: str | None = None, limit: int | None = None, kicked_at: float | None = None) -> int:
    """Send due messages in batches for up to ~50 s; the minute schedule and enqueue kicks
    start new drains, so a backlog keeps flowing on every worker."""
    batch = limit or settings.MAILROOM_SEND_BATCH
    return until_kick_window_closes(
        lambda budget: send_due_messages(channel=channel, limit=batch, time_budget=budget),
        kicked_at=kicked_at,
        time_budget=DRAIN_TIME_BUDGET,
    )


def clean_delivery_logs() -> int:
    days = settings.MAILROOM_ATTEMPT_RETENTION_DAYS
    return logs.delete_old_attempts(days=days) + webhook_logs.delete_old_deliveries(days=days)


def prune_old_messages() -> dict:
    """Nightly: old bodies and events go under the retention settings (messaging.delivery.retention)."""
    result = retention.prune_old_messages()
    logger.info(
        "retention: %d message bodies pruned (%d attachments, %d sandbox copies), %d events deleted in %d batches%s",
        result.bodies,
        result.attachments,
        result.sandbox,
        result.events,
        result.batches,
        "" if result.finished else "; out of time, the next run carries on",
    )
    return result.as_dict()


def clean_orphaned_attachment_files() -> int:
    """Daily: files left by messages whose transaction rolled back."""
    return delete_orphaned_files()


def clean_expired_signups() -> int:
    """Daily: unconfirmed sign-ups past MAILROOM_SIGNUP_EXPIRY_DAYS are deleted."""
    return delete_expired_signups()


def process_stranded_inbound() -> int:
    """Every few minutes: inbound messages a crash left unhandled go through their handler."""
    return inbound.process_stranded_inbound(older_than=timedelta(minutes=settings.MAILROOM_INBOUND_STRANDED_MINUTES))


def poll_email_inboxes() -> int:
    """Every minute: the new mail of each email inbox read over IMAP."""
    return mailbox.poll_email_inboxes()


def send_weekly_digests() -> int:
    """Hourly: the weekly digest of each contact whose local time is Monday 09:xx."""
    return digest.send_weekly_digests()


def send_password_reset(*, address: str, language: str) -> bool:
    """Queued by the reset page (messaging.verification.queue_password_reset)."""
    return verification.send_password_reset(address=address, language=language)


def run_import_job(*, job_id: int) -> None:
    """A console CSV import (messaging.import_jobs), run on the cluster."""
    import_jobs.run_import_job(job_id=job_id)


def recover_import_jobs() -> int:
    """Every minute: import jobs whose worker died (lease ran out) run again or fail clearly."""
    return import_jobs.recover_import_jobs()
