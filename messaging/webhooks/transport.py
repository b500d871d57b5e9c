"""The HTTP session webhooks are sent with. Besides the name check before each request
(messaging.webhooks.addresses), every connection checks the address it actually reached, so a
DNS answer that changes between the check and the connection (rebinding) cannot reach a
private address either. No proxy or .netrc from the environment (trust_env off): the peer
checked is the receiver itself."""

import ipaddress
import socket

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from messaging.webhooks.addresses import is_public


def _check_peer(connection: HTTPConnection, sock: socket.socket) -> socket.socket:
    if settings.MAILROOM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return sock
    address = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
    if not is_public(address):
        sock.close()
        raise NewConnectionError(connection, f"refused to connect to the private address {address}")
    return sock


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _check_peer(self, super()._new_conn())


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _check_peer(self, super()._new_conn())


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPPool, "https": _CheckedHTTPSPool}


def webhook_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    adapter = CheckedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
