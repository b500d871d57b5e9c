"""What every provider backend offers: open a session for a batch, send each message."""

from contextlib import AbstractContextManager
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from messaging.delivery.tracking import fill_message_marker
from messaging.models import OutboxMessage, Provider
from messaging.secrets import SecretUnavailable, redact, reveal, unseal_credentials


class ProviderError(Exception):
    """The provider as a whole is unusable right now (connection refused, bad credentials…)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class ProviderMisconfigured(ProviderError):
    def __init__(self, message: str):
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class Result:
    outcome: str  # DeliveryAttempt.Outcome
    response: str = ""
    provider_message_id: str = ""
    hard_bounce: bool = False  # the address itself is bad: suppress it
    broken_session: bool = False  # reopen the connection before the next message

    @property
    def sent(self) -> bool:
        return self.outcome == "sent"


def sent(response: str = "", provider_message_id: str = "") -> Result:
    return Result("sent", response, provider_message_id)


def transient(response: str, *, broken_session: bool = False) -> Result:
    return Result("transient", response, broken_session=broken_session)


def permanent(response: str, *, hard_bounce: bool = False) -> Result:
    return Result("permanent", response, hard_bounce=hard_bounce)


def secret(provider: Provider, name: str) -> str:
    """A credential: named in the provider's config (`"password_secret": "SMTP"`) and held in
    settings.MAILROOM_SECRETS (environment MAILROOM_SECRET_SMTP), else typed in the console
    and sealed on the provider (`password` for `password_secret`)."""
    key = provider.config.get(name)
    if not key:
        if not provider.sealed_credentials:
            return ""
        try:
            return unseal_credentials(provider.sealed_credentials).get(name.removesuffix("_secret"), "")
        except SecretUnavailable as error:
            raise ProviderMisconfigured(str(error)) from error
    if key not in settings.MAILROOM_SECRETS:
        raise ProviderMisconfigured(_("Secret %(key)s is not set (environment MAILROOM_SECRET_%(key)s).") % {"key": key})
    return settings.MAILROOM_SECRETS[key]


def final_text(message: OutboxMessage, *, with_secrets: bool = True) -> str:
    """An SMS, WhatsApp or push body exactly as it goes out: its per-message links
    ({{ unsubscribe_url }}, {{ preferences_url }}, {{ view_in_browser_url }}) filled in for
    this message, its secrets filled in (or redacted, `with_secrets=False`, for what is
    stored). Every text provider sends this, as every email provider sends `compose`."""
    text = fill_message_marker(message.body_text, message.pk)
    return reveal(message, text) if with_secrets else redact(text)


class Session(AbstractContextManager):
    """One open connection (SMTP, HTTP keep-alive…) reused for a whole batch."""

    def __init__(self, provider: Provider):
        self.provider = provider

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def begin(self, messages: list[OutboxMessage]) -> None:
        """The messages this session is about to send, in order (deliver() says so once a
        batch): a session may prepare them ahead. Nothing to do by default."""

    def send(self, message: OutboxMessage) -> Result:
        raise NotImplementedError

    def send_ahead(self, message: OutboxMessage, following: OutboxMessage | None) -> Result:
        """Send `message` within a batch whose next message is `following`. A session may
        start on `following` early (SMTP pipelining writes its envelope together with this
        message's content); the next call is then for `following`, or the session is closed."""
        return self.send(message)

    def flush(self) -> None:
        """Make final what was sent so far. Called before outcomes are recorded in the
        middle of a batch (urgent messages), so nothing is marked sent that the provider
        does not hold yet."""

    def close(self) -> None:
        """Flush and close; called once per batch."""
