"""The OpenAPI schema and its two readers (Swagger UI, ReDoc), served from our static files
(drf-spectacular-sidecar): no CDN, works offline, and fits the project's CSP.

- Swagger UI: the split view loads its start-up script from a URL instead of an inline
  <script>, so the site's nonce-based script-src applies unchanged.
- ReDoc: our template (templates/drf_spectacular/redoc.html) drops the Google Fonts links
  and loads static/mailroom/redoc-offline.js first, which turns any image source on another
  origin (ReDoc 2 always draws its vendor's logo from the vendor's servers) into an empty
  local image. ReDoc runs its search in a Web
  Worker built from a blob: URL, so its page alone adds `worker-src 'self' blob:`.

Reading them needs an authenticated user (a console session works); an anonymous browser is
sent to the console login.
"""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from messaging.api.problems import CONTENT_TYPE

SCHEMA_URL_NAME = "api:schema"


class _ProblemsAsJson:
    """These views render YAML or HTML; their errors are still problem+json."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), CONTENT_TYPE
        return response


class _LoginFirst(_ProblemsAsJson):
    def handle_exception(self, exc):
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)


class SchemaView(_ProblemsAsJson, SpectacularAPIView):
    pass


class SwaggerView(_LoginFirst, SpectacularSwaggerSplitView):
    url_name = SCHEMA_URL_NAME
    title = "Mailroom API"


class RedocView(_LoginFirst, SpectacularRedocView):
    url_name = SCHEMA_URL_NAME
    title = "Mailroom API"


def redoc_policy() -> dict:
    return {**settings.SECURE_CSP, "worker-src": [CSP.SELF, "blob:"]}


def redoc_view():
    return csp_override(redoc_policy())(RedocView.as_view())
