"""Email headers: each line encoded once (RFC 2047 encoded words for non-ASCII text, named
addresses, List-Unsubscribe as a plain URL), the Message-ID and the unsubscribe link."""

import base64
import re
import time
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from functools import lru_cache

from django.conf import settings

from messaging.delivery.tracking import public_link
from messaging.models import OutboxMessage
from messaging.site import current as current_site
from messaging.tokens import KeyedHash, secret_keys

ADDRESS_HEADERS = ("From", "To", "Cc", "Reply-To")
# An address with nothing to encode or parse: ASCII atext, dots and one @ (RFC 5322 addr-spec).
PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
ENCODED_WORD_BYTES = 39  # 52 base64 characters: "Subject: =?utf-8?b?…?=" stays under 78 columns


def message_id_for(message: OutboxMessage) -> str:
    """Deterministic: the same message always carries the same Message-ID, across retries.
    Its right-hand side is the sending domain (the From address's), unless
    MAILROOM_MESSAGE_ID_DOMAIN names one."""
    domain = settings.MAILROOM_MESSAGE_ID_DOMAIN or sending_domain(message.from_address or current_site().default_from)
    mac = _message_id_key(secret_keys()[0]).digest(str(message.id).encode())
    return f"<m{message.id}.{mac.hex()[:12]}@{domain}>"


@lru_cache(maxsize=4)
def _message_id_key(secret: str) -> KeyedHash:
    return KeyedHash(secret.encode())


@lru_cache(maxsize=256)
def sending_domain(from_address: str) -> str:
    domain = envelope_address(from_address).rpartition("@")[2].strip().lower()
    return domain if domain and re.fullmatch(r"[a-z0-9.-]+", domain) else "localhost"


UNSUBSCRIBE_MARKER = "__MAILROOM_UNSUBSCRIBE__"


def unsubscribe_url(message: OutboxMessage) -> str:
    """Made once per message object: its header and its footer carry the same link."""
    url = message.__dict__.get("_unsubscribe_url")
    if url is None:
        url = message.__dict__["_unsubscribe_url"] = public_link(message.id, UNSUBSCRIBE_MARKER)
    return url


def _encode_header(value: str) -> str:
    if "\n" in value or "\r" in value:  # a value never starts a header of its own
        value = " ".join(value.split())
    if value.isascii():
        return value
    return encoded_words(value)


def _encode_list_header(value: str) -> str:
    """List-Unsubscribe and the like: URLs in angle brackets go out as they are (an
    encoded word hides the URL from every mail client), folded after commas when long."""
    value = " ".join(value.split())
    if not value.isascii():
        return _encode_header(value)
    if len(value) > 60 and "," in value:
        value = ",\r\n ".join(part.strip() for part in value.split(","))
    return value


LIST_HEADERS = frozenset({"List-Unsubscribe", "List-Unsubscribe-Post", "List-Help", "List-Subscribe", "List-Owner", "List-Archive"})


def encode_header_line(name: str, value: str) -> str:
    if name in ADDRESS_HEADERS:
        return f"{name}: {_encode_address(value)}"
    if name in LIST_HEADERS:
        return f"{name}: {_encode_list_header(str(value))}"
    return f"{name}: {_encode_header(str(value))}"


def encoded_words(value: str) -> str:
    """RFC 2047 base64 encoded words of at most ENCODED_WORD_BYTES bytes each, never
    splitting a UTF-8 character, folded onto continuation lines."""
    data = value.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        end = min(start + ENCODED_WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: back off
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode() + "?=")
        start = end
    return "\r\n ".join(words)


def _encode_address(value: str) -> str:
    if PLAIN_ADDRESS.fullmatch(value):
        return value
    if "," in value:  # a list (To and Cc of an email from the Django backend)
        return ",\r\n ".join(formataddr(pair, charset="utf-8") if pair[0] else pair[1] for pair in getaddresses([value]))
    return _encode_named_address(value)


@lru_cache(maxsize=256)
def _encode_named_address(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address


@lru_cache(maxsize=256)
def envelope_address(value: str) -> str:
    return value if PLAIN_ADDRESS.fullmatch(value) else parseaddr(value)[1]


_date = (0, "")


def _date_header() -> str:
    """RFC 5322 date of this second (formatted once a second, not once a message)."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now))
    return _date[1]


def build_headers(message: OutboxMessage) -> dict[str, str]:
    site = current_site()
    headers = {
        "From": message.from_address or site.default_from,
        "To": message.to_address,
        "Subject": message.subject,
        "Date": _date_header(),
        "Message-ID": message.message_id or message_id_for(message),
    }
    if message.is_marketing:
        url = unsubscribe_url(message)
        # RFC 8058 one-click unsubscribe.
        headers["List-Unsubscribe"] = f"<{url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if site.reply_to and not any(name.lower() == "reply-to" for name in message.headers or {}):
        headers["Reply-To"] = site.reply_to
    headers.update(message.headers or {})
    return headers
