"""django-anymail's ESP webhooks (tracking and inbound), routed under /webhooks/anymail/.

Anymail verifies each ESP's credential (HTTP basic auth with ANYMAIL["WEBHOOK_SECRET"], or
the ESP's own signature: Mailgun's signing key, SendGrid's verification key) and sends its
`tracking` signal, which `messaging.delivery.inbound.on_anymail_tracking` turns into our events. One
thing anymail does not do: with no credential configured it only warns, and takes posts from
anyone, who could then suppress any address. Here such a webhook is refused with 403.
"""

import logging
import warnings
from functools import wraps

from anymail import urls as anymail_urls
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

logger = logging.getLogger(__name__)


def _authenticated(view_class, initkwargs: dict) -> bool:
    """Whether this ESP's webhook checks a credential: basic auth, or a signature anymail
    verifies (the views that verify one say so by not warning about missing basic auth)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anymail's own "insecure" and "unsupported" warnings
        try:
            view = view_class(**initkwargs)
        except ImproperlyConfigured:  # e.g. Mailgun without its signing key
            return False
    return bool(view.basic_auth) or not view.warn_if_no_basic_auth


def refuse_unauthenticated(view):
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not _authenticated(view.view_class, view.view_initkwargs):
            logger.warning("%s: no webhook credential configured (ANYMAIL_WEBHOOK_SECRET): refused", request.path)
            return HttpResponse("webhook credentials are not configured", status=403, content_type="text/plain")
        return view(request, *args, **kwargs)

    return guarded


app_name = "anymail"
urlpatterns = [
    URLPattern(pattern.pattern, refuse_unauthenticated(pattern.callback), pattern.default_args, pattern.name)
    for pattern in anymail_urls.urlpatterns
]
