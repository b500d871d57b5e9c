from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    """Who uses the console: the role groups and their permissions (accounts.roles), and the
    user and group pages. Listed last in INSTALLED_APPS: its role table names the permissions
    of every app, and no app below imports it."""

    name = "accounts"  # no models of its own: the console never shows its name

    def ready(self) -> None:
        # Here, not at the top: accounts.roles imports the models, which load after this module.
        from accounts.roles import setup_roles_after_migrate

        post_migrate.connect(setup_roles_after_migrate, dispatch_uid="accounts_setup_roles")
