"""Is a provider reachable right now? What `manage.py doctor` reports per active provider.

SMTP: connect, EHLO, NOOP; HTTP: a HEAD to the configured URL. Both with a short timeout,
so a dead provider costs the check seconds, not the minutes of a send. The sandbox needs
nothing; an API provider (django-anymail) is not contacted: its ESP has no harmless call."""

import http.client
import smtplib
from urllib.parse import urlsplit

from messaging.models import Provider
from messaging.providers.fcm import FCM_URL

PROBE_TIMEOUT = 5.0


def probe_provider(provider: Provider, *, timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """(reachable, what was seen) for one provider."""
    if provider.kind == Provider.Kind.SANDBOX:
        return True, "sandbox: stores messages, nothing to reach"
    if provider.kind == Provider.Kind.ANYMAIL:
        return True, "not checked: API provider"
    if provider.kind == Provider.Kind.SMTP:
        return _probe_smtp(provider.config, timeout)
    if provider.kind == Provider.Kind.HTTP:
        default = FCM_URL if provider.channel == "push" else ""  # push talks to FCM unless told otherwise
        return _probe_http(provider.config.get("url") or default, timeout)
    return False, f"unknown kind {provider.kind!r}"


def _probe_smtp(config: dict, timeout: float) -> tuple[bool, str]:
    host, port = config.get("host", "127.0.0.1"), config.get("port", 25)
    try:
        with smtplib.SMTP(host, int(port), timeout=timeout) as connection:
            code, reply = connection.ehlo()
            if code != 250:
                return False, f"SMTP {host}:{port} EHLO refused: {code} {reply.decode(errors='replace')}"
            code, reply = connection.noop()
            if code != 250:
                return False, f"SMTP {host}:{port} NOOP refused: {code} {reply.decode(errors='replace')}"
    except (OSError, ValueError, smtplib.SMTPException) as error:
        return False, f"SMTP {host}:{port} unreachable: {error or type(error).__name__}"
    return True, f"SMTP {host}:{port} answers EHLO and NOOP"


def _probe_http(url: str, timeout: float) -> tuple[bool, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False, f"no HTTP URL configured ({url!r})" if url else "no URL configured"
    factory = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = factory(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("HEAD", parts.path or "/")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return False, f"HEAD {url} failed: {error or type(error).__name__}"
    finally:
        connection.close()
    # Any HTTP answer means the service is up; a 5xx means it is not serving.
    if status >= 500:
        return False, f"HEAD {url}: {status}"
    return True, f"HEAD {url}: {status}"
