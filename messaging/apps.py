from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _after_migrate(sender, **kwargs) -> None:
    from django.apps import apps

    # post_migrate fires once per app; the last app's signal sees every permission.
    if sender is not [config for config in apps.get_app_configs() if config.models_module][-1]:
        return
    from config.roles import setup_roles
    from messaging.schedules import ensure_schedules

    setup_roles()
    ensure_schedules()


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Messaging")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_after_migrate, dispatch_uid="mailroom_roles")
        from anymail.signals import tracking

        from messaging.inbound import on_anymail_tracking

        tracking.connect(on_anymail_tracking, dispatch_uid="mailroom_anymail_tracking")
