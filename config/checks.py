"""Project-wide system checks. The secret-key rule lives here, once: `check --deploy`
reports it as an error and `manage.py doctor` as a FAIL, with the same words."""

from django.conf import settings
from django.core.checks import Error

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
