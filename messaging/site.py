"""Who sends, from where, and what the product calls itself: the one place these are read.

Every reader asks `current()`. Each value comes from, in this order:
1. its environment variable (read once in config/settings.py), when set;
2. the Settings page (the `SiteSettings` row), when filled in;
3. the default below.
The row is read at most once every `TTL` seconds per process (a send path asks per
message) and forgotten when this process saves it, so a change made in the console shows
at once here and within `TTL` seconds in the other web workers and the cluster.

Changes go through `update_site_settings` (validated, all or nothing, audited).
"""

import re
import time
from dataclasses import dataclass, field
from email.utils import parseaddr, quote
from functools import cached_property
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.core.validators import URLValidator, validate_email
from django.db import DatabaseError, transaction
from django.utils.translation import gettext as _

from messaging.audit import diff, record_audit
from messaging.errors import InvalidInput
from messaging.models import SiteSettings
from messaging.senders import CONTROL_CHARACTERS, sender_error

TTL = 5.0
DEFAULTS = {
    "sender_name": "Mailroom",
    "from_email": "hello@mailroom.test",
    "reply_to": "",
    "postal_address": "",
    "site_name": "Mailroom",
    "base_url": "http://127.0.0.1:8000",
    "site_url": "",  # the base URL
    "default_provider": SiteSettings.DefaultProvider.SANDBOX.value,
}
# The environment variable that overrides each field (MAILROOM_DEFAULT_FROM holds both
# the sender's name and address: "Mailroom <hello@example.com>").
ENVIRONMENT = {
    "sender_name": "MAILROOM_DEFAULT_FROM",
    "from_email": "MAILROOM_DEFAULT_FROM",
    "reply_to": "MAILROOM_REPLY_TO",
    "postal_address": "MAILROOM_SENDER_ADDRESS",
    "site_name": "MAILROOM_SITE_NAME",
    "base_url": "MAILROOM_BASE_URL",
    "site_url": "MAILROOM_SITE_URL",
    "default_provider": "MAILROOM_DEFAULT_PROVIDER",
}
FIELDS = tuple(DEFAULTS)
_cache: tuple[float, dict[str, str]] | None = None
# The environment's values (settings change only in tests, which announce it) and the last
# Site built, with the stored values it was built from: a send path asks once per header
# and footer, so building it again each time was ~10 % of the CPU per message.
_environment_values: dict[str, str] | None = None
_site: "tuple[dict[str, str], dict[str, str], Site] | None" = None


@dataclass(frozen=True)
class Site:
    sender_name: str
    from_email: str
    reply_to: str
    postal_address: str
    site_name: str
    base_url: str
    site_url: str
    default_provider: str
    overridden: dict[str, str] = field(default_factory=dict)  # field → the environment variable that sets it

    @cached_property
    def default_from(self) -> str:
        """The From of every message that names none: "Name <address>"."""
        return format_sender(self.sender_name, self.from_email)

    def link(self, path: str) -> str:
        """An absolute link to `path` on Mailroom (emails, printed URLs, signatures)."""
        return self.base_url.rstrip("/") + path


def format_sender(name: str, address: str) -> str:
    if not name:
        return address
    if re.search(r'[()<>\[\]:;@\\,."]', name):
        name = f'"{quote(name)}"'
    return f"{name} <{address}>"


def _environment() -> dict[str, str]:
    values = {}
    for name, variable in ENVIRONMENT.items():
        value = getattr(settings, variable, "") or ""
        if variable == "MAILROOM_DEFAULT_FROM" and value:
            sender_name, address = parseaddr(value)
            value = sender_name if name == "sender_name" else address
            values[name] = value  # set as a pair, even an empty name
        elif value:
            values[name] = value
    return values


def stored() -> dict[str, str]:
    """The values saved on the Settings page (cached TTL seconds; {} before `migrate`)."""
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < TTL:
        return _cache[1]
    try:
        row = SiteSettings.objects.filter(pk=SiteSettings.SINGLETON).values(*FIELDS).first() or {}
    except DatabaseError:  # no table yet (before migrate): the defaults
        row = {}
    values = {name: value for name, value in row.items() if value}
    _cache = (now, values)
    return values


def forget() -> None:
    """Read the row again next time (after a save, and between tests)."""
    global _cache
    _cache = None


def current() -> Site:
    global _environment_values, _site
    if _environment_values is None:
        _environment_values = _environment()
    environment, saved = _environment_values, stored()
    cached = _site
    if cached is not None and cached[0] is environment and cached[1] is saved:
        return cached[2]
    values = {name: environment.get(name, saved.get(name, DEFAULTS[name])) for name in FIELDS}
    values["site_url"] = values["site_url"] or values["base_url"]
    site = Site(**values, overridden={name: ENVIRONMENT[name] for name in environment})
    _site = (environment, saved, site)
    return site


def _forget_environment(*, setting: str, **kwargs) -> None:
    """A setting changed (tests' override_settings): read the environment's values again."""
    global _environment_values
    if setting in ENVIRONMENT.values():
        _environment_values = None


setting_changed.connect(_forget_environment, dispatch_uid="messaging.site.environment")


# --- changing them --------------------------------------------------------------------------
def _url_error(value: str) -> str | None:
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        return _("Enter a full web address starting with http:// or https://.")
    return None


def _address_error(value: str) -> str | None:
    try:
        validate_email(value)
    except ValidationError:
        return _("“%(value)s” is not a valid email address.") % {"value": value}
    return None


def settings_errors(values: dict[str, str]) -> dict[str, list[str]]:
    """{field: [message]} for every value that cannot be saved."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str | None) -> None:
        if message:
            errors.setdefault(name, []).append(message)

    for name, value in values.items():
        limit = SiteSettings._meta.get_field(name).max_length
        if limit and len(value) > limit:
            add(name, _("At most %(n)s characters.") % {"n": limit})
        elif name != "postal_address" and CONTROL_CHARACTERS.search(value):
            add(name, _("Line breaks and control characters are not allowed here."))
    if errors:
        return errors
    for name in ("from_email", "reply_to"):
        if values.get(name):
            add(name, _address_error(values[name]))
    for name in ("base_url", "site_url"):
        if values.get(name):
            add(name, _url_error(values[name]))
    if "\x00" in values.get("postal_address", ""):
        add("postal_address", _("Control characters are not allowed here."))
    if values.get("default_provider") and values["default_provider"] not in SiteSettings.DefaultProvider.values:
        add("default_provider", _("Choose sandbox or none."))
    if values.get("sender_name") and values.get("from_email") and not errors:
        add("sender_name", sender_error(format_sender(values["sender_name"], values["from_email"])))
    return errors


def load_settings(*, for_update: bool = False) -> SiteSettings:
    """The row (made on first use)."""
    SiteSettings.objects.get_or_create(pk=SiteSettings.SINGLETON)
    queryset = SiteSettings.objects.select_for_update() if for_update else SiteSettings.objects
    return queryset.get(pk=SiteSettings.SINGLETON)


@transaction.atomic
def update_site_settings(*, actor: AbstractBaseUser | None, values: dict[str, Any]) -> SiteSettings:
    """Save the Settings page's values (the fields named in `values`, trimmed); all or none:
    InvalidInput naming each field that is wrong. Audited with before and after."""

    unknown = set(values) - set(FIELDS)
    if unknown:
        raise InvalidInput(_("Unknown settings: %(names)s.") % {"names": ", ".join(sorted(unknown))})
    cleaned = {name: str(value or "").strip() for name, value in values.items()}
    if "postal_address" in cleaned:
        cleaned["postal_address"] = "\n".join(line.strip() for line in cleaned["postal_address"].splitlines() if line.strip())
    if errors := settings_errors(cleaned):
        first = next(iter(errors.values()))[0]
        raise InvalidInput(first, fields=errors)
    row = load_settings(for_update=True)
    before = {name: getattr(row, name) for name in cleaned}
    for name, value in cleaned.items():
        setattr(row, name, value)
    changes = diff(before, cleaned)
    if changes:
        row.updated_by = actor if actor is not None and actor.is_authenticated else None
        row.save()
        record_audit(actor=actor, verb="settings_changed", target=row, changes=changes)
    forget()
    transaction.on_commit(forget)
    return row


def postal_address_missing() -> str:
    """Why marketing email cannot go out yet (enqueue and the campaign guardrails say the same)."""
    return _("Marketing email needs the sender's postal address: fill it in under Settings → Sending (or set MAILROOM_SENDER_ADDRESS).")
