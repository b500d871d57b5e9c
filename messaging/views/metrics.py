"""GET /metrics: Prometheus' text format (messaging.metrics), for a scraper or an operator.

- MAILROOM_METRICS_TOKEN unset: 404, the endpoint does not exist.
- "Authorization: Bearer <token>" matching it (compared in constant time): 200.
- A signed-in user who may watch operations (Ops, Admin: policies.can_watch_operations):
  200, so an operator can read in a browser what Prometheus reads. Another signed-in user: 403.
- Anything else: 401 with `WWW-Authenticate: Bearer`.
"""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from messaging import policies
from messaging.metrics import render_metrics


def _bearer(request: HttpRequest) -> str:
    scheme, _space, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.MAILROOM_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    offered = _bearer(request)
    allowed = bool(offered) and hmac.compare_digest(offered.encode(), token.encode())
    if not allowed and not offered and request.user.is_authenticated:
        if not policies.can_watch_operations(request.user):
            return HttpResponse("Forbidden: Ops and Admin only.\n", status=403, content_type="text/plain; charset=utf-8")
        allowed = True
    if not allowed:
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="mailroom-metrics"'
        return response
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
