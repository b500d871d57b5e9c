"""A host project's settings: Mailroom installed, and Django's email going through its outbox
(README, "Use Mailroom as your EMAIL_BACKEND")."""

from config.settings import *  # noqa: F403 - Mailroom's settings, as a host project starts from them

EMAIL_BACKEND = "messaging.backend.EmailBackend"
DEFAULT_FROM_EMAIL = "Shop <shop@example.com>"
