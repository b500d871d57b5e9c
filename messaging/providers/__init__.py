"""Provider backends by kind and channel."""

from messaging.models import Channel, Provider
from messaging.providers.base import ProviderError, ProviderMisconfigured, Result, Session
from messaging.providers.email.esp import DjangoBackendSession
from messaging.providers.email.smtp import SMTPSession
from messaging.providers.fcm import PushSession
from messaging.providers.http import TwilioStyleSession
from messaging.providers.sandbox import SandboxSession


def session_for(provider: Provider) -> Session:
    if provider.kind == Provider.Kind.SANDBOX:
        return SandboxSession(provider)
    if provider.channel == Channel.EMAIL:
        if provider.kind == Provider.Kind.SMTP:
            return SMTPSession(provider)
        if provider.kind == Provider.Kind.ANYMAIL:
            return DjangoBackendSession(provider)
    if provider.kind == Provider.Kind.HTTP:
        if provider.channel in (Channel.SMS, Channel.WHATSAPP):
            return TwilioStyleSession(provider)
        if provider.channel == Channel.PUSH:
            return PushSession(provider)
    raise ProviderMisconfigured(f"A {provider.get_kind_display()} provider cannot send {provider.get_channel_display()}.")


__all__ = ["ProviderError", "ProviderMisconfigured", "Result", "Session", "session_for"]
