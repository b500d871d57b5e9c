from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _after_migrate(sender, **kwargs) -> None:
    from django.apps import apps

    # post_migrate fires once per app; the last app's signal sees every permission.
    if sender is not [config for config in apps.get_app_configs() if config.models_module][-1]:
        return
    from django.core.management import call_command

    from messaging.schedules import ensure_schedules

    ensure_schedules()
    # The shared cache's table (rate limits, lockouts): `migrate` makes it, like any table.
    call_command("createcachetable", database=kwargs.get("using", "default"), verbosity=0)


def check_public_base_url(app_configs=None, **kwargs) -> list:
    """RFC 8058: the List-Unsubscribe header must carry an HTTPS URI for one-click."""
    from django.conf import settings
    from django.core.checks import Warning

    from messaging import site

    if settings.DEBUG or settings.TESTING or site.current().base_url.startswith("https://"):
        return []
    return [
        Warning(
            "Mailroom's public address (MAILROOM_BASE_URL, or Settings → Sending) is not an https:// URL: mailbox "
            "providers ignore RFC 8058 one-click unsubscribe without HTTPS, and public links (tokens) travel in clear.",
            hint="Set it to https://your.domain in production (Settings → Sending, or MAILROOM_BASE_URL).",
            id="messaging.W001",
        )
    ]


# What MAILROOM_DEFAULT_PROVIDER may say. Only the sandbox can stand in for a provider
# nobody configured (an SMTP server or an API needs a host, a URL, credentials: those are
# configured as Providers in the console); "none" means a channel without a provider waits.
DEFAULT_PROVIDER_VALUES = ("sandbox", "none")


def check_default_provider(app_configs=None, **kwargs) -> list:
    from django.conf import settings
    from django.core.checks import Error

    value = settings.MAILROOM_DEFAULT_PROVIDER
    if not value or value in DEFAULT_PROVIDER_VALUES:  # unset: the Settings page's choice
        return []
    return [
        Error(
            f'MAILROOM_DEFAULT_PROVIDER={value!r} is not supported: it must be "sandbox" (a channel with no provider '
            'configured sends into the console\'s sandbox inbox) or "none" (its messages wait until a provider is configured).',
            hint="SMTP, email-service (anymail) and HTTP providers are configured in the console under Providers, "
            "with their host or URL and credentials; unset MAILROOM_DEFAULT_PROVIDER or set it to sandbox or none.",
            id="messaging.E001",
        )
    ]


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Messaging")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from config.checks import check_secret_key

        checks.register(check_public_base_url, checks.Tags.security, deploy=True)
        checks.register(check_default_provider)
        checks.register(check_secret_key, checks.Tags.security, deploy=True)
        post_migrate.connect(_after_migrate, dispatch_uid="mailroom_roles")
        from anymail.signals import inbound, tracking

        from messaging.delivery.inbound import on_anymail_inbound, on_anymail_tracking

        tracking.connect(on_anymail_tracking, dispatch_uid="mailroom_anymail_tracking")
        inbound.connect(on_anymail_inbound, dispatch_uid="mailroom_anymail_inbound")

        from django.db.models.signals import pre_save
        from django_q.models import Schedule
        from django_q.signals import pre_enqueue

        from messaging.schedules import guard_enqueue, guard_schedule

        pre_save.connect(guard_schedule, sender=Schedule, dispatch_uid="mailroom_guard_schedule")
        pre_enqueue.connect(guard_enqueue, dispatch_uid="mailroom_guard_enqueue")

        from django.db.models.signals import m2m_changed

        from messaging.audit import audit_m2m_change, audited_relations

        for through in audited_relations():
            m2m_changed.connect(audit_m2m_change, sender=through, dispatch_uid=f"mailroom_audit_{through._meta.label_lower}")

        from messaging.timeline import register_messaging_sources

        register_messaging_sources()  # first: marketing's and growth's ready() add theirs after
