import sys

import django
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from messaging import health, site
from messaging.checks import secret_key_problem
from messaging.models import Provider
from messaging.providers.probe import probe_provider

CSP_MIDDLEWARE = "django.middleware.csp.ContentSecurityPolicyMiddleware"


def check_python() -> tuple[bool, str]:
    version = ".".join(map(str, sys.version_info[:3]))
    return sys.version_info >= (3, 12), f"Python {version}"


def check_django() -> tuple[bool, str]:
    return django.VERSION[:2] >= (6, 1), f"Django {django.get_version()}"


def check_database() -> tuple[bool, str]:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        connection.ensure_connection()
    except Exception as error:
        return False, f"{connection.vendor}: {error}"
    return True, f"{connection.vendor} ({connection.settings_dict['NAME']})"


def check_migrations() -> tuple[bool, str]:
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as error:
        return False, str(error)
    return not plan, "all applied" if not plan else f"{len(plan)} unapplied (run migrate)"


def check_heartbeat() -> tuple[bool, str]:
    try:
        age = health.heartbeat_age()
    except Exception as error:
        return False, str(error)
    if age is None:
        return False, "never seen: start a cluster (python manage.py run_cluster)"
    return not health.heartbeat_is_missing(age), f"last seen {int(age)} s ago"


def check_providers() -> list[tuple[str, bool, str]]:
    """One row per active provider: each is contacted (SMTP EHLO/NOOP, HTTP HEAD)."""

    providers = list(Provider.objects.filter(is_active=True).order_by("channel", "priority", "id"))
    if not providers:
        fallback = site.current().default_provider == "sandbox"
        return [("Providers", fallback, "none configured: the sandbox takes every channel" if fallback else "none configured")]
    return [(f"Provider {provider.name}", *probe_provider(provider)) for provider in providers]


def check_secret_key() -> tuple[bool, str]:
    problem = secret_key_problem()  # the rule `check --deploy` applies too
    return (False, problem) if problem else (True, "set")


def check_static() -> tuple[bool, str]:
    found = finders.find("mailroom/console.css") and finders.find("unfold/js/app.js")
    if not found:
        return False, "console assets missing"
    if not settings.DEBUG and not (settings.STATIC_ROOT / "staticfiles.json").exists():
        return False, f"not collected into {settings.STATIC_ROOT} (run collectstatic)"
    return True, "present"


def check_csp() -> tuple[bool, str]:
    on = CSP_MIDDLEWARE in settings.MIDDLEWARE and bool(settings.SECURE_CSP)
    return on, "enforced" if on else "off"


CHECKS = [
    ("Python ≥ 3.12", check_python),
    ("Django ≥ 6.1", check_django),
    ("Database reachable", check_database),
    ("Migrations applied", check_migrations),
    ("Cluster heartbeat", check_heartbeat),
    ("Providers configured", check_providers),
    ("Static files", check_static),
    ("Content-Security-Policy", check_csp),
    ("Secret key", check_secret_key),
]


class Command(BaseCommand):
    help = "Check that this Mailroom can run: prints a PASS/FAIL table, exits non-zero on any FAIL."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--skip", action="append", default=[], help="check name to skip (e.g. heartbeat)")

    def handle(self, *args, **options) -> None:
        failures = 0
        width = max(len(name) for name, _ in CHECKS)
        for name, check in CHECKS:
            if any(word.lower() in name.lower() for word in options["skip"]):
                self.stdout.write(f"SKIP  {name:<{width}}")
                continue
            result = check()
            rows = result if isinstance(result, list) else [(name, *result)]
            for label, ok, detail in rows:
                failures += not ok
                status = self.style.SUCCESS("PASS") if ok else self.style.ERROR("FAIL")
                self.stdout.write(f"{status}  {label:<{width}}  {detail}")
        if failures:
            raise CommandError(f"{failures} check(s) failed")
