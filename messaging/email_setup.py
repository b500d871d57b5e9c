"""Email delivery set up from the Settings page: the sandbox, an SMTP server, or an email
service (ESP) through django-anymail, and a test message that shows the server's answer.

The page manages one Provider (`SiteSettings.email_provider`). Its password or API key is
typed once and sealed in the database (messaging.secrets.seal_credentials), or named as a
secret held in the environment (MAILROOM_SECRET_<NAME>); it is never shown back, logged or
audited. An SMTP set-up is only saved once the server accepted a connection with it (the
same session code that sends: connect, STARTTLS or TLS, login), so a typo in the host or the
password is an error on the page, not a queue of failing messages.
"""

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from messaging.audit import diff, record_audit
from messaging.delivery.on_demand import send_test_message
from messaging.errors import InvalidInput
from messaging.models import Channel, DeliveryAttempt, OutboxMessage, Provider
from messaging.providers.base import ProviderError
from messaging.providers.email.smtp import SMTPSession
from messaging.secrets import SecretUnavailable, seal_credentials, unseal_credentials
from messaging.site import load_settings

logger = logging.getLogger(__name__)
MANAGED_NAME = "Email (Settings)"
SANDBOX_NAME = f"Sandbox {Channel.EMAIL.label}"  # what messaging.delivery.sending names the fallback
SECRET_NAME = re.compile(r"[A-Z0-9_]{1,64}")
HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]+\]")
CHECK_TIMEOUT = 10.0


class Delivery(models.TextChoices):
    SANDBOX = "sandbox", gettext_lazy("Sandbox: store every email in the sandbox inbox, send nothing")
    SMTP = "smtp", gettext_lazy("SMTP server")
    ESP = "esp", gettext_lazy("Email service (API key, through django-anymail)")


class Security(models.TextChoices):
    STARTTLS = "starttls", gettext_lazy("STARTTLS (port 587)")
    SSL = "ssl", gettext_lazy("TLS from the start (port 465)")
    NONE = "none", gettext_lazy("None (a local relay only)")


# ESP: (name, django-anymail backend, the backend option the API key goes in)
ESPS = {
    "mailgun": ("Mailgun", "anymail.backends.mailgun.EmailBackend", "api_key"),
    "sendgrid": ("SendGrid", "anymail.backends.sendgrid.EmailBackend", "api_key"),
    "postmark": ("Postmark", "anymail.backends.postmark.EmailBackend", "server_token"),
    "brevo": ("Brevo", "anymail.backends.brevo.EmailBackend", "api_key"),
    "resend": ("Resend", "anymail.backends.resend.EmailBackend", "api_key"),
    "sparkpost": ("SparkPost", "anymail.backends.sparkpost.EmailBackend", "api_key"),
}


@dataclass(frozen=True)
class EmailSetup:
    """What the page shows: never a credential, only whether one is stored."""

    mode: str
    host: str = ""
    port: int | None = None
    security: str = Security.STARTTLS
    username: str = ""
    password_stored: bool = False
    password_secret: str = ""
    esp: str = ""
    api_key_stored: bool = False
    api_key_secret: str = ""
    provider: Provider | None = None


def _stored_names(provider: Provider) -> set[str]:
    try:
        return set(unseal_credentials(provider.sealed_credentials))
    except SecretUnavailable:
        return set()


def current_email_setup() -> EmailSetup:
    provider = load_settings().email_provider
    if provider is None:
        return EmailSetup(mode=Delivery.SANDBOX)
    config, stored = provider.config, _stored_names(provider)
    mode = Delivery.SANDBOX
    if provider.is_active:
        mode = Delivery.SMTP if provider.kind == Provider.Kind.SMTP else Delivery.ESP
    esp = next((key for key, (_name, backend, _option) in ESPS.items() if backend == config.get("backend")), "")
    return EmailSetup(
        mode=mode,
        host=config.get("host", ""),
        port=config.get("port"),
        security=Security.SSL if config.get("ssl") else Security.STARTTLS if config.get("starttls") else Security.NONE,
        username=config.get("username", ""),
        password_stored="password" in stored,
        password_secret=config.get("password_secret", ""),
        esp=esp,
        api_key_stored="api_key" in stored,
        api_key_secret=config.get("api_key_secret", ""),
        provider=provider,
    )


# --- changing it --------------------------------------------------------------------------------
def _secret_name_error(name: str) -> str | None:
    if not SECRET_NAME.fullmatch(name):
        return _("A secret's name has capital letters, digits and _ only (MAILROOM_SECRET_<NAME> in the environment).")
    if name not in settings.MAILROOM_SECRETS:
        return _("The environment has no MAILROOM_SECRET_%(name)s.") % {"name": name}
    return None


def _smtp_config(*, host: str, port: int | None, security: str, username: str, password_secret: str) -> tuple[dict, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if not host:
        errors["host"] = [_("The SMTP server's host name is required.")]
    elif not HOST.fullmatch(host):
        errors["host"] = [_("“%(host)s” is not a host name.") % {"host": host[:100]}]
    if port is None:
        port = 465 if security == Security.SSL else 587 if security == Security.STARTTLS else 25
    if not isinstance(port, int) or not 1 <= port <= 65535:
        errors["port"] = [_("A port is a number from 1 to 65535.")]
    if security not in Security.values:
        errors["security"] = [_("Choose STARTTLS, TLS or none.")]
    if len(username) > 254 or re.search(r"[\x00-\x1f\x7f]", username):
        errors["username"] = [_("This is not a user name.")]
    config = {"host": host, "port": port, "starttls": security == Security.STARTTLS, "ssl": security == Security.SSL, "timeout": 30}
    if username:
        config["username"] = username
    if password_secret:
        config["password_secret"] = password_secret
    return config, errors


def check_smtp(provider: Provider) -> None:
    """Open a session as sending does (connect, STARTTLS or TLS, login) and close it;
    InvalidInput with the server's answer when it does not work."""
    provider.config = {**provider.config, "timeout": CHECK_TIMEOUT}
    session = SMTPSession(provider)
    try:
        with session:
            pass
    except ProviderError as error:
        field = "password" if "login" in str(error).lower() else "host"
        raise InvalidInput(
            _("The SMTP server did not accept the connection: %(answer)s") % {"answer": error}, fields={field: [str(error)]}
        ) from error


def configure_email_delivery(
    *,
    actor: AbstractBaseUser | None,
    mode: str,
    host: str = "",
    port: int | None = None,
    security: str = Security.STARTTLS,
    username: str = "",
    password: str = "",
    password_secret: str = "",
    esp: str = "",
    api_key: str = "",
    api_key_secret: str = "",
    check: bool = True,
) -> EmailSetup:
    """Deliver email through the sandbox, an SMTP server or an ESP. An empty password or API
    key keeps the stored one. All or nothing: InvalidInput naming each wrong field, and for
    SMTP the server's answer when it refused the connection. Audited (never a credential)."""
    if mode not in Delivery.values:
        raise InvalidInput(_("Choose the sandbox, an SMTP server or an email service."), fields={"mode": [_("Unknown choice.")]})
    row = load_settings()
    existing = row.email_provider
    host, username, password_secret, api_key_secret = host.strip(), username.strip(), password_secret.strip(), api_key_secret.strip()
    if mode == Delivery.SANDBOX:
        return _save(actor=actor, mode=mode, provider=None, config=None, credentials=None)

    kind = Provider.Kind.SMTP if mode == Delivery.SMTP else Provider.Kind.ANYMAIL
    kept: dict[str, str] = {}
    if existing is not None and existing.kind == kind:
        try:
            kept = unseal_credentials(existing.sealed_credentials)
        except SecretUnavailable:
            kept = {}
    errors: dict[str, list[str]] = {}
    credentials: dict[str, str] = {}
    if mode == Delivery.SMTP:
        config, errors = _smtp_config(host=host, port=port, security=security, username=username, password_secret=password_secret)
        if password_secret:
            if problem := _secret_name_error(password_secret):
                errors["password_secret"] = [problem]
        elif password or kept.get("password"):
            credentials["password"] = password or kept["password"]
        elif username:
            errors["password"] = [_("A user name needs its password (or the name of a secret holding it).")]
    else:
        if esp not in ESPS:
            errors["esp"] = [_("Choose an email service.")]
            config = {}
        else:
            _name, backend, option = ESPS[esp]
            config = {"backend": backend, "options": {}, "credential_option": option}
        if api_key_secret:
            if problem := _secret_name_error(api_key_secret):
                errors["api_key_secret"] = [problem]
            config["api_key_secret"] = api_key_secret
        elif api_key or kept.get("api_key"):
            credentials["api_key"] = api_key or kept["api_key"]
        else:
            errors["api_key"] = [_("The service's API key is required (or the name of a secret holding it).")]
        if len(api_key) > 500 or re.search(r"[\x00-\x1f\x7f]", api_key):
            errors["api_key"] = [_("This is not an API key.")]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], fields=errors)

    candidate = Provider(
        name=MANAGED_NAME, channel=Channel.EMAIL, kind=kind, config=dict(config), sealed_credentials=seal_credentials(credentials)
    )
    if check and kind == Provider.Kind.SMTP:
        check_smtp(candidate)  # before anything is saved, outside the transaction (network)
    rotated = sorted(name for name, value in credentials.items() if kept.get(name) != value)
    return _save(actor=actor, mode=mode, provider=candidate, config=config, credentials=credentials, rotated=rotated)


@transaction.atomic
def _save(
    *,
    actor: AbstractBaseUser | None,
    mode: str,
    provider: Provider | None,
    config: dict | None,
    credentials: dict | None,
    rotated: list[str] | tuple = (),
) -> EmailSetup:

    row = load_settings(for_update=True)
    managed = Provider.objects.select_for_update().filter(pk=row.email_provider_id).first() if row.email_provider_id else None
    before = {"mode": current_email_setup().mode, "kind": managed.kind if managed else "", "config": managed.config if managed else {}}
    if provider is None:  # the sandbox
        if managed is not None and managed.is_active:
            managed.is_active = False
            managed.save(update_fields=["is_active"])
            Provider.objects.filter(name=SANDBOX_NAME, channel=Channel.EMAIL, kind=Provider.Kind.SANDBOX).update(is_active=True)
        after = {**before, "mode": mode}
    else:
        if managed is None:
            managed = Provider.objects.filter(name=MANAGED_NAME).first() or Provider(name=MANAGED_NAME, channel=Channel.EMAIL)
        managed.kind, managed.config, managed.is_active = provider.kind, config, True
        managed.sealed_credentials = seal_credentials(credentials or {})
        managed.consecutive_failures, managed.resting_until = 0, None
        managed.save()
        row.email_provider = managed
        row.save(update_fields=["email_provider", "updated_at"])
        # The sandbox no longer stands behind it: a failing server must not quietly
        # "deliver" into the sandbox inbox.
        for sandbox in Provider.objects.filter(channel=Channel.EMAIL, kind=Provider.Kind.SANDBOX, is_active=True):
            sandbox.is_active = False
            sandbox.save(update_fields=["is_active"])
            record_audit(actor=actor, verb="deactivated", target=sandbox, changes={"is_active": {"before": True, "after": False}})
        after = {"mode": mode, "kind": managed.kind, "config": managed.config}
    changes = diff(before, after)
    if rotated:
        changes["replaced"] = list(rotated)  # which credentials were typed anew, never their values
    if changes:
        record_audit(actor=actor, verb="email_delivery_changed", target=managed or row, changes=changes)
    return current_email_setup()


# --- testing it -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestAnswer:
    provider: Provider
    to: str
    status: str  # OutboxMessage.Status
    answer: str  # what the server said (SMTP reply code and text, the ESP's answer, the error)
    message: OutboxMessage

    @property
    def ok(self) -> bool:
        return self.status == OutboxMessage.Status.SENT


def delivery_provider() -> Provider:
    """Where email goes now: the provider the page set up, else the sandbox."""
    setup = current_email_setup()
    if setup.mode != Delivery.SANDBOX and setup.provider is not None:
        return setup.provider
    sandbox, _created = Provider.objects.get_or_create(
        name=SANDBOX_NAME, defaults={"channel": Channel.EMAIL, "kind": Provider.Kind.SANDBOX, "priority": 100}
    )
    return sandbox


def send_delivery_test(*, actor: AbstractBaseUser | None, to: str) -> TestAnswer:
    """Send a test email now through the current set-up (from the configured sender) and
    return what the server answered."""

    to = (to or "").strip()
    try:
        validate_email(to)
    except ValidationError as error:
        raise InvalidInput(
            _("“%(value)s” is not a valid email address.") % {"value": to[:254]}, fields={"to": [_("Enter an email address.")]}
        ) from error
    provider = delivery_provider()
    message = send_test_message(actor=actor, provider=provider, to=to)
    attempt = DeliveryAttempt.objects.filter(message=message).order_by("-id").first()
    answer = (attempt.response if attempt else "") or message.error
    logger.info("settings test send message=%s provider=%s status=%s", message.pk, provider.pk, message.status)
    return TestAnswer(provider=provider, to=message.to_address, status=message.status, answer=answer, message=message)
