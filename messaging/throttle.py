"""A small rate limiter on Django's cache: fixed windows, one `incr` per hit.

Limits live in settings.MAILROOM_RATE_LIMITS as {scope: (hits, seconds)}; a limit of 0
turns a scope off. The counters are as shared as the cache is: the default local-memory
cache counts per process (so N web workers allow up to N times the limit); configure a
shared cache (Redis, Memcached) in CACHES to count per site.
"""

import hashlib
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def allow(*, scope: str, key: str, limit: int | None = None, window: int | None = None) -> bool:
    """Count one hit of `key` in `scope`; False once the window's limit is passed."""
    if limit is None or window is None:
        limit, window = settings.MAILROOM_RATE_LIMITS[scope]
    if not limit:
        return True
    bucket = f"mailroom:rl:{scope}:{key}:{int(time.time()) // window}"
    try:
        count = cache.incr(bucket)
    except ValueError:  # first hit of this window
        if cache.add(bucket, 1, timeout=window + 1):
            return True
        count = cache.incr(bucket)
    return count <= limit


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR: behind a proxy, set it from the proxy's header in the web server (a
    header set by the client is not trusted here)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


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
    if not cache.add(bucket, 1, timeout=window):
        try:
            cache.incr(bucket)
        except ValueError:  # expired between the two calls
            cache.add(bucket, 1, timeout=window)


def forget_failures(*, scope: str, key: str) -> None:
    cache.delete(_failure_key(scope, key))
