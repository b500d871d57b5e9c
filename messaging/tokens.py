"""Signed, purpose-salted, expiring tokens for every public link (seed 000's TokenService).

A token is Django's `signing.dumps` format (base64 JSON : timestamp : HMAC-SHA256), salted
per purpose so a token made for one page never opens another, and read back with a
maximum age. Ids inside a token are concealed (a keyed 64-bit permutation, see
`conceal_id`), so a URL never shows a message, contact or user id, nor an address.

Errors say what went wrong in a way the public pages can map to a status without
revealing anything: `TokenInvalid` (tampered, wrong purpose: 400), `TokenExpired` (410)
and `TokenUsed` (single-use links used once already: 410).
"""

import base64
import hashlib
import hmac
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes


class TokenError(Exception):
    status = 400
    reason = "invalid"


class TokenInvalid(TokenError):
    """Tampered with, truncated, made for another purpose, or pointing at nothing."""


class TokenExpired(TokenError):
    status = 410
    reason = "expired"


class TokenUsed(TokenError):
    status = 410
    reason = "used"


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

    def _current_mac(self) -> "hmac.HMAC":
        secret = settings.SECRET_KEY
        if secret != self._secret:
            key = hashlib.sha256(force_bytes(self.salt + "signer") + force_bytes(secret)).digest()
            self._mac, self._secret, self._trusted = hmac.new(key, digestmod=hashlib.sha256), secret, None
        return self._mac

    def verify(self, signed_value: str, signature: str) -> bool:
        """Whether `signature` is this salt's signature of `signed_value` under SECRET_KEY
        (what Signer.unsign checks first), with the key derived once."""
        mac = self._current_mac().copy()
        mac.update(signed_value.encode())
        return hmac.compare_digest(_b64(mac.digest()), signature)

    def __call__(self, obj) -> str:
        self._current_mac()
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


# --- concealed ids -------------------------------------------------------------------------
_ROUNDS = 4
_MASK32 = 0xFFFFFFFF


@lru_cache(maxsize=4)
def _round_key(secret: str) -> "hmac.HMAC":
    return hmac.new(hashlib.sha256(force_bytes("mailroom.concealed-ids") + force_bytes(secret)).digest(), digestmod=hashlib.sha256)


def _feistel(value: int, rounds) -> int:
    key = _round_key(settings.SECRET_KEY)
    left, right = value >> 32, value & _MASK32
    for index in rounds:
        mac = key.copy()
        mac.update(bytes((index,)) + right.to_bytes(4, "big"))
        left, right = right, left ^ int.from_bytes(mac.digest()[:4], "big")
    return (left << 32) | right


@lru_cache(maxsize=2048)
def _conceal(value: int, secret: str) -> str:
    return signing.b62_encode(_feistel(value, range(_ROUNDS)))


def conceal_id(value: int) -> str:
    """A database id as a short opaque string: a 4-round Feistel network over 64 bits with
    HMAC-SHA256 round functions (a keyed permutation, so ids never collide and nobody
    without SECRET_KEY can read or count them). Cached: one email's links share it."""
    if not 0 <= value < 1 << 64:
        raise ValueError("ids are 64-bit unsigned")
    return _conceal(value, settings.SECRET_KEY)


def reveal_id(value: object) -> int | None:
    if not isinstance(value, str) or not value.isascii() or not value.isalnum() or len(value) > 12:
        return None
    number = signing.b62_decode(value)
    if not 0 <= number < 1 << 64:
        return None
    # Undo the rounds in reverse: (left, right) <- (right ^ F(left), left)
    key = _round_key(settings.SECRET_KEY)
    left, right = number >> 32, number & _MASK32
    for index in reversed(range(_ROUNDS)):
        mac = key.copy()
        mac.update(bytes((index,)) + left.to_bytes(4, "big"))
        left, right = right ^ int.from_bytes(mac.digest()[:4], "big"), left
    return (left << 32) | right


# --- the service -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    data: object
    issued_at: datetime

    @property
    def age_seconds(self) -> float:
        return time.time() - self.issued_at.timestamp()


class TokenService:
    """One purpose: its salt and how long its links live.

    PREFERENCES = TokenService("mailroom.preferences", max_age=lambda: 365 * 86400)
    token = PREFERENCES.make({"m": conceal_id(message.pk)})
    PREFERENCES.read(token).data   # raises TokenInvalid / TokenExpired

    `max_age=never` makes links that stay valid for good (still signed and salted): an
    unsubscribe link must work however old the message is.
    """

    def __init__(self, salt: str, *, max_age: Callable[[], float | None], compress: bool = False):
        self.salt = salt
        self._max_age = max_age
        self._signer = FastSigner(salt, compress=compress)

    def make(self, data) -> str:
        return self._signer(data)

    def read(self, token: str) -> Token:
        if not isinstance(token, str) or len(token) > 1000 or token.count(":") != 2 or not token.isascii():
            raise TokenInvalid
        value, stamp, signature = token.rsplit(":", 2)
        if not self._signer.verify(f"{value}:{stamp}", signature):
            return self._read_with_django(token)  # e.g. signed with a key in SECRET_KEY_FALLBACKS
        try:
            signed_at = signing.b62_decode(stamp)
            data = base64.urlsafe_b64decode(value.lstrip(".") + "=" * (-len(value.lstrip(".")) % 4))
            payload = json.loads(zlib.decompress(data) if value.startswith(".") else data)
        except (ValueError, UnicodeError, zlib.error) as error:
            raise TokenInvalid from error
        max_age = self._max_age()
        if max_age is not None and time.time() - signed_at > max_age:
            raise TokenExpired
        return Token(data=payload, issued_at=datetime.fromtimestamp(signed_at, tz=UTC))

    def _read_with_django(self, token: str) -> Token:
        try:
            data = signing.loads(token, salt=self.salt, max_age=self._max_age())
        except signing.SignatureExpired as error:
            raise TokenExpired from error
        except (signing.BadSignature, ValueError, UnicodeError, zlib.error) as error:
            raise TokenInvalid from error
        stamp = signing.b62_decode(token.rsplit(":", 2)[1])
        return Token(data=data, issued_at=datetime.fromtimestamp(stamp, tz=UTC))

    def read_id(self, token: str, key: str) -> tuple[int, Token]:
        """The concealed id under `key` in a dict token (a bare int from tokens made
        before ids were concealed is still accepted: those are signed by us too)."""
        read = self.read(token)
        value = read.data.get(key) if isinstance(read.data, dict) else read.data
        number = value if isinstance(value, int) and not isinstance(value, bool) else reveal_id(value)
        if number is None or number <= 0:
            raise TokenInvalid
        return number, read


def public_link_seconds() -> float:
    return settings.MAILROOM_PUBLIC_LINK_MAX_AGE_DAYS * 86400


def never() -> None:
    """The max age of links that never expire (unsubscribe)."""
    return None
