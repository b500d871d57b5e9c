"""Rate limits per API key, per user, and per IP address for anonymous requests.

Rates come from settings (MAILROOM_API_KEY_RATE, MAILROOM_API_USER_RATE,
MAILROOM_API_ANON_RATE) read on each request, and a key may carry its own rate. Counters
live in the shared cache (settings.CACHES "default"). Anonymous requests are counted per
client address as messaging.delivery.throttle.client_ip reads it (DRF's own reading trusts any
X-Forwarded-For). A refusal is a 429 problem with Retry-After.
"""

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from messaging.delivery.throttle import client_ip
from messaging.models import ApiKey


class PrincipalRateThrottle(SimpleRateThrottle):
    cache_format = "mailroom:api-throttle:%(scope)s:%(ident)s"

    def __init__(self) -> None:  # the rate depends on who asks; chosen in allow_request
        pass

    def allow_request(self, request: Request, view) -> bool:
        self.rate = self.rate_for(request)
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    @staticmethod
    def rate_for(request: Request) -> str:
        if isinstance(request.auth, ApiKey):
            return request.auth.rate or settings.MAILROOM_API_KEY_RATE
        if request.user and request.user.is_authenticated:
            return settings.MAILROOM_API_USER_RATE
        return settings.MAILROOM_API_ANON_RATE

    def get_cache_key(self, request: Request, view) -> str:
        if isinstance(request.auth, ApiKey):
            scope, ident = "key", request.auth.pk
        elif request.user and request.user.is_authenticated:
            scope, ident = "user", request.user.pk
        else:
            scope, ident = "anon", client_ip(request)
        return self.cache_format % {"scope": scope, "ident": ident}
