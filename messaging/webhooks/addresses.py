"""Which URLs a webhook may be sent to. Only http(s); every address the host name resolves to
must be public unless MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on (tests, a closed
network). Checked when an endpoint is saved and again before each request: DNS may change."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from messaging.errors import InvalidInput


def _refused(text: str) -> InvalidInput:
    return InvalidInput(text, fields={"url": [text]})


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: str) -> None:
    """Raise InvalidInput (on the `url` field) for a URL a webhook may not be sent to."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise _refused(_("This is not a valid URL.")) from error
    if parts.scheme not in ("http", "https"):
        raise _refused(_("Only http:// and https:// URLs can receive webhooks."))
    if not parts.hostname:
        raise _refused(_("The URL needs a host name."))
    if parts.username or parts.password:
        raise _refused(_("Put no user name or password in the URL: requests are signed with the endpoint's secret."))
    if settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as error:  # ValueError: a NUL in the name
        raise _refused(_("The host name “%(host)s” cannot be resolved.") % {"host": parts.hostname}) from error
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not is_public(address):
            raise _refused(
                _("“%(host)s” leads to a private, loopback or reserved address (%(address)s): webhooks go to public addresses only.")
                % {"host": parts.hostname, "address": address}
            )
