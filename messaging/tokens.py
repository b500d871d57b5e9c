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
import json
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.core.signals import setting_changed
from django.dispatch import receiver
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


class CachedKeySigner(signing.TimestampSigner):
    """Django's `TimestampSigner`, token for token (what `signing.dumps`/`loads` make and
    read), with the salted HMAC key derived once per (salt, key) instead of hashed again
    before every signature (bench/signing.py times it against Django's own). Fallback
    keys (SECRET_KEY_FALLBACKS) are tried as Django tries them.

    Making a token is on the send path twice per marketing email (click and unsubscribe
    links), so `sign_object` is Django's, step for step, minus the per-call costs that do
    not change the result: one JSON encoder instead of one per token (json.dumps builds
    a new one for non-default separators), the timestamp encoded once a second, the
    signing key's HMAC kept on the signer."""

    _timestamp = (-1, "")

    def signature(self, value, key=None):
        if key is None or key == self.key:
            mac = self.__dict__.get("_mac")
            if mac is None:
                mac = self.__dict__["_mac"] = _derived_mac(self.salt + "signer", self.key, self.algorithm)
        else:
            mac = _derived_mac(self.salt + "signer", key, self.algorithm)
        digest = mac.digest(value.encode() if isinstance(value, str) else force_bytes(value))
        return base64.urlsafe_b64encode(digest).strip(b"=").decode()

    def timestamp(self):
        now = int(time.time())
        cached = self._timestamp
        if cached[0] != now:
            cached = self._timestamp = (now, signing.b62_encode(now))
        return cached[1]

    def sign_object(self, obj, serializer=signing.JSONSerializer, compress=False):
        if serializer is not signing.JSONSerializer:
            return super().sign_object(obj, serializer=serializer, compress=compress)
        data = _COMPACT_JSON.encode(obj).encode("latin-1")  # JSONSerializer().dumps(obj)
        is_compressed = False
        if compress:
            compressed = zlib.compress(data)
            if len(compressed) < (len(data) - 1):
                data, is_compressed = compressed, True
        base64d = base64.urlsafe_b64encode(data).strip(b"=").decode()  # signing.b64_encode
        if is_compressed:
            base64d = "." + base64d
        value = f"{base64d}{self.sep}{self.timestamp()}"
        return f"{value}{self.sep}{self.signature(value)}"


# What json.dumps(obj, separators=(",", ":")) uses, made once.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class KeyedHash:
    """HMAC (RFC 2104) with the key's inner and outer states hashed once and copied per
    message: the bytes `hmac.new(key, prefix + message, hasher).digest()` gives, in
    0.75 µs instead of 1.76 (`hmac.HMAC.copy()` builds a Python object around three
    copied hash states on every use; timeit, SHA-256, 4-byte messages). Every email's
    tokens, concealed id and Message-ID are made with it; tests/messaging/test_tokens.py
    checks it against the hmac module."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, hasher: Callable = hashlib.sha256, prefix: bytes = b""):
        block = hasher().block_size
        if len(key) > block:
            key = hasher(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hasher(key.translate(_IPAD) + prefix)
        self._outer = hasher(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@lru_cache(maxsize=64)
def _derived_mac(key_salt: str, secret: str | bytes, algorithm: str) -> KeyedHash:
    """The HMAC `django.utils.crypto.salted_hmac` computes, keyed once per salt and secret."""
    hasher = getattr(hashlib, algorithm)
    return KeyedHash(hasher(force_bytes(key_salt) + force_bytes(secret)).digest(), hasher)


# --- the keys ------------------------------------------------------------------------------
_keys: tuple[str, tuple[str, ...]] | None = None


def secret_keys() -> tuple[str, tuple[str, ...]]:
    """SECRET_KEY and SECRET_KEY_FALLBACKS, read through `settings` once. Every attribute
    read of the lazy settings object goes through LazyObject.__getattribute__ (Python code):
    an email read the two keys six times (its tokens, concealed id and Message-ID), about
    2 % of its CPU. Settings only change under a test's override, which says so."""
    global _keys
    if _keys is None:
        _keys = (settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))
    return _keys


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs) -> None:
    global _keys
    if setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _keys = None


# --- concealed ids -------------------------------------------------------------------------
_ROUNDS = 4
_MASK32 = 0xFFFFFFFF


_HALF = struct.Struct(">I")


@lru_cache(maxsize=4)
def _round_macs(secret: str) -> tuple[KeyedHash, ...]:
    """Each round's function, HMAC-SHA256(key, round byte + 4 bytes of a half), with its
    round byte already hashed in."""
    key = hashlib.sha256(force_bytes("mailroom.concealed-ids") + force_bytes(secret)).digest()
    return tuple(KeyedHash(key, prefix=bytes((index,))) for index in range(_ROUNDS))


def _feistel(value: int, rounds: tuple[KeyedHash, ...]) -> int:
    left, right = value >> 32, value & _MASK32
    for round_mac in rounds:
        left, right = right, left ^ _HALF.unpack_from(round_mac.digest(_HALF.pack(right)))[0]
    return (left << 32) | right


@lru_cache(maxsize=2048)
def _conceal(value: int, secret: str) -> str:
    return signing.b62_encode(_feistel(value, _round_macs(secret)))


def conceal_id(value: int) -> str:
    """A database id as a short opaque string: a 4-round Feistel network over 64 bits with
    HMAC-SHA256 round functions (a keyed permutation, so ids never collide and nobody
    without SECRET_KEY can read or count them). Cached: one email's links share it."""
    if not 0 <= value < 1 << 64:
        raise ValueError("ids are 64-bit unsigned")
    return _conceal(value, secret_keys()[0])


def reveal_id(value: object) -> int | None:
    if not isinstance(value, str) or not value.isascii() or not value.isalnum() or len(value) > 12:
        return None
    number = signing.b62_decode(value)
    if not 0 <= number < 1 << 64:
        return None
    # Undo the rounds in reverse: (left, right) <- (right ^ F(left), left)
    left, right = number >> 32, number & _MASK32
    for round_mac in reversed(_round_macs(secret_keys()[0])):
        left, right = right ^ _HALF.unpack_from(round_mac.digest(_HALF.pack(left)))[0], left
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
        self.compress = compress
        self._max_age = max_age
        self._cached: tuple[tuple, CachedKeySigner] | None = None

    def _signer(self) -> CachedKeySigner:
        """This purpose's signer for the current SECRET_KEY and SECRET_KEY_FALLBACKS (kept:
        making a Signer costs about as much as signing)."""
        keys = secret_keys()
        cached = self._cached
        if cached is None or cached[0] != keys:
            cached = self._cached = (keys, CachedKeySigner(salt=self.salt))
        return cached[1]

    def make(self, data) -> str:
        return self._signer().sign_object(data, compress=self.compress)

    def read(self, token: str) -> Token:
        if not isinstance(token, str) or len(token) > 1000 or token.count(":") != 2 or not token.isascii():
            raise TokenInvalid
        try:
            data = self._signer().unsign_object(token, max_age=self._max_age())
            stamp = signing.b62_decode(token.rsplit(":", 2)[1])
        except signing.SignatureExpired as error:
            raise TokenExpired from error
        except (signing.BadSignature, ValueError, UnicodeError, zlib.error) as error:
            raise TokenInvalid from error
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
