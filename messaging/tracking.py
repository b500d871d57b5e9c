"""Tracked links: every link in an HTML body is stored once as a TrackedLink and rewritten
to our click endpoint. A click may only ever redirect to a stored TrackedLink URL."""

import base64
import hashlib
import hmac
import json
import re
import time
import zlib

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes

from messaging.models import TrackedLink

CLICK_SALT = "mailroom.click"
MESSAGE_MARKER = "__MAILROOM_MESSAGE__"
HREF = re.compile(r"""href=(["'])(https?://[^"']+)\1""", re.IGNORECASE)


def rewrite_links(html: str) -> str:
    """Replace http(s) links by click URLs carrying a per-message marker filled in at send time."""
    urls = {match.group(2) for match in HREF.finditer(html)}
    if not urls:
        return html
    ids = {url: _link_id(url) for url in urls}
    base = settings.MAILROOM_BASE_URL.rstrip("/")
    return HREF.sub(lambda m: f"href={m.group(1)}{base}/t/{ids[m.group(2)]}/{MESSAGE_MARKER}/{m.group(1)}", html)


_known_links: dict[str, int] = {}


def _link_id(url: str) -> int:
    """TrackedLink ids are immutable, so a process keeps them once looked up."""
    if url not in _known_links:
        digest = hashlib.sha256(url.encode()).hexdigest()
        link, _ = TrackedLink.objects.get_or_create(url_hash=digest, defaults={"url": url})
        _known_links[url] = link.pk
    return _known_links[url]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FastSigner:
    """`signing.dumps(obj, salt=salt, compress=compress)`, token for token, with the salted
    HMAC key derived once per secret instead of on every call (Django derives it each time:
    two tokens per email cost ~40 µs that way). The first token made with each secret is
    checked with `signing.loads`; if Django's format ever changes, the check fails and
    Django's own `dumps` is used from then on."""

    def __init__(self, salt: str, *, compress: bool = False):
        self.salt, self.compress = salt, compress
        self._secret: str | None = None
        self._mac = None
        self._trusted: bool | None = None  # None: the next token is checked

    def __call__(self, obj) -> str:
        secret = settings.SECRET_KEY
        if secret != self._secret:
            key = hashlib.sha256(force_bytes(self.salt + "signer") + force_bytes(secret)).digest()
            self._mac, self._secret, self._trusted = hmac.new(key, digestmod=hashlib.sha256), secret, None
        if self._trusted is False:
            return signing.dumps(obj, salt=self.salt, compress=self.compress)
        data = json.dumps(obj, separators=(",", ":")).encode("latin-1")
        value = None
        if self.compress:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                value = "." + _b64(compressed)
        value = f"{value or _b64(data)}:{signing.b62_encode(int(time.time()))}"
        mac = self._mac.copy()
        mac.update(value.encode())
        token = f"{value}:{_b64(mac.digest())}"
        if self._trusted is None:
            try:
                self._trusted = signing.loads(token, salt=self.salt) == json.loads(data)
            except signing.BadSignature:
                self._trusted = False
            if not self._trusted:
                return signing.dumps(obj, salt=self.salt, compress=self.compress)
        return token


_click_signer = FastSigner(CLICK_SALT)


def message_token(message_pk: int) -> str:
    return _click_signer(message_pk)


# Public links that need the message id; the pages live under these paths.
PUBLIC_LINKS = {
    "__MAILROOM_UNSUBSCRIBE__": ("u", "mailroom.unsubscribe"),
    "__MAILROOM_PREFERENCES__": ("p", "mailroom.preferences"),
    "__MAILROOM_VIEW__": ("v", "mailroom.view"),
}


_public_signers = {marker: FastSigner(salt, compress=True) for marker, (_prefix, salt) in PUBLIC_LINKS.items()}


def public_link(message_pk: int, marker: str) -> str:
    token = _public_signers[marker]({"m": message_pk})
    return f"{settings.MAILROOM_BASE_URL.rstrip('/')}/{PUBLIC_LINKS[marker][0]}/{token}/"


def message_from_public_token(token: str, marker: str) -> int | None:
    """The message id in a public link's token, or None when tampered with or expired."""
    _prefix, salt = PUBLIC_LINKS[marker]
    try:
        data = signing.loads(token, salt=salt, max_age=settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS * 86400)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    return data.get("m") if isinstance(data, dict) and isinstance(data.get("m"), int) else None


def fill_message_marker(content: str, message_pk: int) -> str:
    """Fill the per-message parts of links at send time (one cheap check when there are none)."""
    if "__MAILROOM_" not in content:
        return content
    content = content.replace(MESSAGE_MARKER, message_token(message_pk))
    for marker in PUBLIC_LINKS:
        if marker in content:
            content = content.replace(marker, public_link(message_pk, marker))
    return content


def message_from_token(token: str) -> int | None:
    try:
        return int(signing.loads(token, salt=CLICK_SALT))
    except (signing.BadSignature, ValueError, TypeError):
        return None
