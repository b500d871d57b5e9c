"""WSGI entry point. Tracking hits (the open pixel /o/ and click redirects /t/) go to a
lean handler: they read no cookie, render no page and are the most frequent requests
Mailroom serves, so they skip the console's middleware (sessions, auth, messages, CSRF,
locale, CSP, htmx) and resolve against a two-route URLconf. Everything else goes through
the full Django stack."""

import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.urls import set_urlconf

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

TRACKING_PREFIXES = ("/o/", "/t/")
TRACKING_URLCONF = "messaging.tracking_urls"


# Security headers and the strict CSP of the public error pages still apply.
TRACKING_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.csp.ContentSecurityPolicyMiddleware"]


class TrackingHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler builds its chain from settings.MIDDLEWARE; swap the list for the
        # duration (this runs once, at import, before any request thread exists).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = TRACKING_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    def get_response(self, request):
        request.urlconf = TRACKING_URLCONF
        set_urlconf(TRACKING_URLCONF)
        try:
            response = super().get_response(request)
        finally:
            set_urlconf(None)
        # CommonMiddleware's one job we keep: a length, so keep-alive needs no chunking.
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response


django_application = get_wsgi_application()  # sets Django up first
tracking_application = TrackingHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(TRACKING_PREFIXES):
        return tracking_application(environ, start_response)
    return django_application(environ, start_response)
