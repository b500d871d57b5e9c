"""A small rate limiter on Django's cache: fixed windows, one `incr` per hit.

Limits live in settings.MAILROOM_RATE_LIMITS as {scope: (hits, seconds)}; a limit of 0
turns a scope off. Counters live in the shared cache (settings.CACHES "default": the
database, or Redis with CACHE_URL), so every web worker counts towards the same limit;
only the tracking flood guard counts per process ("local"), so a hit stays one INSERT.

The client is `client_ip(request)`: the one place that reads the address, used by every
throttle, lockout and consent record (see MAILROOM_TRUSTED_PROXIES).

Hits (for /metrics): each time a client goes over a scope's limit, the shared cache counts
one hit for the scope (`mailroom:rl-hits:<scope>`, no expiry): the first refused request of
a client in a window, and the failure that starts a lockout. Further refusals in the same
window are not counted, so a flood costs one cache write per client and window, never one
per request (for the per-process tracking guard: per client, window and process); a scrape
reads every scope's count with one `get_many`.
"""

import hashlib
import ipaddress
import time
from collections.abc import Callable
from functools import lru_cache, wraps

from django.conf import settings
from django.core.cache import cache, caches
from django.http import HttpRequest, HttpResponse

LOCAL_SCOPES = frozenset({"tracking"})


def allow(*, scope: str, key: str, limit: int | None = None, window: int | None = None) -> bool:
    """Count one hit of `key` in `scope`; False once the window's limit is passed."""
    if limit is None or window is None:
        limit, window = settings.MAILROOM_RATE_LIMITS[scope]
    if not limit:
        return True
    counts = caches["local"] if scope in LOCAL_SCOPES else cache
    bucket = f"mailroom:rl:{scope}:{hashlib.sha256(key.encode()).hexdigest()[:32]}:{int(time.time()) // window}"
    try:
        count = counts.incr(bucket)
    except ValueError:  # first hit of this window
        if counts.add(bucket, 1, timeout=window + 1):
            return True
        count = counts.incr(bucket)
    if count == limit + 1:  # this client just went over: one hit per client and window
        count_hit(scope)
    return count <= limit


def _hits_key(scope: str) -> str:
    return f"mailroom:rl-hits:{scope}"


def count_hit(scope: str) -> None:
    """One more time a client reached the limit of `scope` (shared cache, kept until culled)."""
    key = _hits_key(scope)
    try:
        cache.incr(key)
    except ValueError:
        if not cache.add(key, 1, timeout=None):
            cache.incr(key)


def rate_limit_hits() -> dict[str, int]:
    """{scope: hits counted since the cache was last emptied} for every configured scope,
    in one read of the shared cache."""
    scopes = list(settings.MAILROOM_RATE_LIMITS)
    stored = cache.get_many([_hits_key(scope) for scope in scopes])
    return {scope: int(stored.get(_hits_key(scope)) or 0) for scope in scopes}


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item, strict=False) for item in trusted)


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str:
    """The client's address (see client_address), or "unknown": a throttle key."""
    return client_address(request) or "unknown"


def client_address(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or with MAILROOM_TRUSTED_PROXIES set, the address
    the nearest trusted proxy saw (from X-Forwarded-For, which the client cannot forge
    beyond what the proxies append). A valid IP address, or None."""
    peer = _address(request.META.get("REMOTE_ADDR") or "")
    trusted = settings.MAILROOM_TRUSTED_PROXIES
    if not trusted or peer is None:
        return peer
    hops = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if isinstance(trusted, int):
        # N proxies: the first of them appended the client's address, N entries from the right.
        candidate = _address(hops[-trusted]) if len(hops) >= trusted else None
        return candidate or peer
    networks = _networks(tuple(trusted))
    client = peer
    for hop in [peer, *map(_address, reversed(hops))]:
        if hop is None:
            break  # garbage: stop at the last address a trusted proxy gave
        client = hop
        if not any(ipaddress.ip_address(hop) in network for network in networks):
            break
    return client


def over_limit(request: HttpRequest, scope: str) -> bool:
    """Count one hit of the request's client IP in `scope`; True once over its limit."""
    return not allow(scope=scope, key=client_ip(request))


def throttled(scope: str, *, refused: Callable[[HttpRequest, int], HttpResponse]):
    """View decorator: per client IP and scope; over the limit, `refused(request, window)`."""

    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if over_limit(request, scope):
                return refused(request, settings.MAILROOM_RATE_LIMITS[scope][1])
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


# --- failure counters (the console login) ---------------------------------------------------------
def _failure_key(scope: str, key: str) -> str:
    # Hashed: a username may hold characters a shared cache refuses in a key.
    return f"mailroom:fail:{scope}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def blocked(*, scope: str, key: str) -> bool:
    """Whether `key` has used up its failures in `scope` (counted since its first failure)."""
    limit, _window = settings.MAILROOM_RATE_LIMITS[scope]
    return bool(limit) and (cache.get(_failure_key(scope, key)) or 0) >= limit


def record_failure(*, scope: str, key: str) -> None:
    """Count one failure; the count expires `window` seconds after the first one."""
    limit, window = settings.MAILROOM_RATE_LIMITS[scope]
    if not limit:
        return
    bucket = _failure_key(scope, key)
    count = 1
    if not cache.add(bucket, 1, timeout=window):
        try:
            count = cache.incr(bucket)
        except ValueError:  # expired between the two calls
            cache.add(bucket, 1, timeout=window)
    if count == limit:  # this failure starts the lockout
        count_hit(scope)


def forget_failures(*, scope: str, key: str) -> None:
    cache.delete(_failure_key(scope, key))
