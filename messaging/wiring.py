"""What messaging connects when Django is ready: system checks, the post-migrate set-up,
anymail's signals, the in_batch lookup, the guards on django-q's schedules and queue, m2m audit, timeline sources."""

from anymail.signals import inbound, tracking
from django.apps import apps
from django.core import checks
from django.core.management import call_command
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save, pre_save
from django_q.models import Schedule
from django_q.signals import post_execute, post_spawn, pre_enqueue

from messaging.attachments import delete_files
from messaging.audit import audit_m2m_change, audited_relations
from messaging.checks import (
    check_default_provider,
    check_observability_settings,
    check_public_base_url,
    check_retention,
    check_secret_key,
)
from messaging.cluster import settle_worker_heap
from messaging.delivery.inbound import on_anymail_inbound, on_anymail_tracking
from messaging.erasure import contact_erased
from messaging.error_reports import report_failed_task
from messaging.lookups import register as register_lookups
from messaging.models import Attachment, WebhookEndpoint
from messaging.schedules import ensure_schedules, guard_enqueue, guard_schedule
from messaging.timeline import register_messaging_sources
from messaging.webhooks.emit import forget_subscribed_types
from messaging.webhooks.receivers import on_contact_erased


def after_migrate(sender, **kwargs) -> None:
    # post_migrate fires once per app; the last app's signal sees every table.
    if sender is not [config for config in apps.get_app_configs() if config.models_module][-1]:
        return
    ensure_schedules()
    # The shared cache's table (rate limits, lockouts): `migrate` makes it, like any table.
    call_command("createcachetable", database=kwargs.get("using", "default"), verbosity=0)


def attachment_deleted(sender, instance: Attachment, **kwargs) -> None:
    """A row gone (its message deleted, the contact erased): its file goes after commit."""
    delete_files([instance])


def connect() -> None:
    register_lookups()
    checks.register(check_public_base_url, checks.Tags.security, deploy=True)
    checks.register(check_default_provider)
    checks.register(check_retention)
    checks.register(check_observability_settings)
    checks.register(check_secret_key, checks.Tags.security, deploy=True)
    post_migrate.connect(after_migrate, dispatch_uid="messaging_after_migrate")
    tracking.connect(on_anymail_tracking, dispatch_uid="mailroom_anymail_tracking")
    inbound.connect(on_anymail_inbound, dispatch_uid="mailroom_anymail_inbound")
    post_delete.connect(attachment_deleted, sender=Attachment, dispatch_uid="mailroom_attachment_file")
    pre_save.connect(guard_schedule, sender=Schedule, dispatch_uid="mailroom_guard_schedule")
    pre_enqueue.connect(guard_enqueue, dispatch_uid="mailroom_guard_enqueue")
    post_execute.connect(report_failed_task, dispatch_uid="mailroom_report_failed_task")
    post_spawn.connect(settle_worker_heap, dispatch_uid="mailroom_settle_worker_heap")
    for through in audited_relations():
        m2m_changed.connect(audit_m2m_change, sender=through, dispatch_uid=f"mailroom_audit_{through._meta.label_lower}")
    contact_erased.connect(on_contact_erased, dispatch_uid="mailroom_webhooks_erasure")
    post_save.connect(forget_subscribed_types, sender=WebhookEndpoint, dispatch_uid="mailroom_webhook_types_saved")
    post_delete.connect(forget_subscribed_types, sender=WebhookEndpoint, dispatch_uid="mailroom_webhook_types_deleted")
    register_messaging_sources()  # first: marketing's and growth's ready() add theirs after
