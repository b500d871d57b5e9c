"""Mailroom's system checks. The secret-key rule lives here, once: `check --deploy`
reports it as an error and `manage.py doctor` as a FAIL, with the same words."""

from django.conf import settings
from django.core.checks import Error, Warning

from messaging import site

GUESSABLE_PREFIXES = ("django-insecure",)


def secret_key_problem() -> str | None:
    """Why SECRET_KEY is unfit for production (None when it is fine, or under DEBUG):
    the built-in development key, Django's placeholder, or a short or repetitive key."""
    if settings.DEBUG:
        return None
    key = settings.SECRET_KEY
    if key == settings.INSECURE_DEV_KEY:
        return "the built-in development key is in use: set SECRET_KEY"
    if key.startswith(GUESSABLE_PREFIXES) or len(key) < 50 or len(set(key)) < 5:
        return "SECRET_KEY is guessable (a placeholder, or under 50 characters): set a long random one"
    return None


def check_secret_key(app_configs=None, **kwargs) -> list[Error]:
    problem = secret_key_problem()
    if problem is None:
        return []
    return [
        Error(
            problem,
            hint="Set SECRET_KEY to the output of `python -c 'import secrets; print(secrets.token_urlsafe(50))'`, "
            "the same on every server, or let `make setup` write var/secret_key.",
            id="mailroom.E001",
        )
    ]


def check_public_base_url(app_configs=None, **kwargs) -> list:
    """RFC 8058: the List-Unsubscribe header must carry an HTTPS URI for one-click."""
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


RETENTION_DAYS = ("MAILROOM_BODY_RETENTION_DAYS", "MAILROOM_EVENT_RETENTION_DAYS")


def check_retention(app_configs=None, **kwargs) -> list[Error]:
    """The retention job's settings (messaging.delivery.retention): refused before it runs."""
    errors = [
        Error(
            f"{name}={getattr(settings, name)!r} is negative: it must be a number of days, or 0 to keep forever.",
            hint=f"Set {name} to 0 (keep forever) or a positive number of days.",
            id="messaging.E002",
        )
        for name in RETENTION_DAYS
        if getattr(settings, name) < 0
    ]
    if settings.MAILROOM_RETENTION_BATCH < 1:
        errors.append(
            Error(
                f"MAILROOM_RETENTION_BATCH={settings.MAILROOM_RETENTION_BATCH!r}: a batch must hold at least one row.",
                hint="Leave it unset (2000) or set a positive number of rows per transaction.",
                id="messaging.E003",
            )
        )
    timeout = settings.Q_CLUSTER.get("timeout") or float("inf")
    if not 0 < settings.MAILROOM_RETENTION_TIME_BUDGET_SECONDS < timeout:
        errors.append(
            Error(
                f"MAILROOM_RETENTION_TIME_BUDGET_SECONDS={settings.MAILROOM_RETENTION_TIME_BUDGET_SECONDS!r} must be more than 0 "
                f"and less than the task queue's timeout ({timeout} s), or the cluster kills the job mid-run.",
                hint="Leave it unset (240) or set a number of seconds under Q_CLUSTER['timeout'].",
                id="messaging.E004",
            )
        )
    return errors


# The smallest metrics token accepted: a short one can be guessed by trying.
METRICS_TOKEN_MIN_LENGTH = 24


def check_observability_settings(app_configs=None, **kwargs) -> list[Error]:
    """The thresholds of the console notices and /metrics' token: a negative threshold or
    a heartbeat alert shorter than the heartbeat's own minute would mislead an operator."""
    errors = []
    for name, code in (("MAILROOM_BACKLOG_ALERT_MINUTES", "E010"), ("MAILROOM_BACKLOG_ALERT_COUNT", "E011")):
        if getattr(settings, name) < 0:
            errors.append(
                Error(
                    f"{name}={getattr(settings, name)} is negative.",
                    hint="Set a positive number, or 0 to turn it off.",
                    id=f"mailroom.{code}",
                )
            )
    if settings.MAILROOM_HEARTBEAT_ALERT_SECONDS < 90:
        errors.append(
            Error(
                f"MAILROOM_HEARTBEAT_ALERT_SECONDS={settings.MAILROOM_HEARTBEAT_ALERT_SECONDS} is under 90: the heartbeat runs "
                "once a minute, so a healthy cluster would be reported missing.",
                hint="Leave it unset (180 seconds) or set 90 or more.",
                id="mailroom.E012",
            )
        )
    if settings.MAILROOM_NOTICES_CACHE_SECONDS < 0:
        errors.append(Error("MAILROOM_NOTICES_CACHE_SECONDS is negative.", hint="Set 0 (no cache) or more.", id="mailroom.E013"))
    token = settings.MAILROOM_METRICS_TOKEN
    if token and len(token) < METRICS_TOKEN_MIN_LENGTH:
        errors.append(
            Error(
                f"MAILROOM_METRICS_TOKEN is shorter than {METRICS_TOKEN_MIN_LENGTH} characters: it can be guessed.",
                hint="Use `python -c 'import secrets; print(secrets.token_urlsafe(32))'`, or unset it to turn /metrics off.",
                id="mailroom.E014",
            )
        )
    if not 0 <= settings.SENTRY_TRACES_SAMPLE_RATE <= 1:
        errors.append(
            Error("SENTRY_TRACES_SAMPLE_RATE must be between 0 and 1.", hint="0 (the default) sends no traces.", id="mailroom.E015")
        )
    return errors
