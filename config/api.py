"""The REST API, mounted at /api/v1/ (see config/urls.py).

Each app lists its resources as `routes` (and optionally `urlpatterns`) in
`<app>/api/routes.py`. This module finds them for every app in API_APPS, registers the
viewsets on one router (a DefaultRouter) and adds the plain views. Nothing else needs
changing to publish a resource. For example marketing, once it has a SegmentViewSet, writes in
`marketing/api/routes.py`:

    from messaging.api.routing import Route
    from marketing.api.segments import SegmentViewSet

    routes = [Route("segments", SegmentViewSet, "segment")]   # ← the one line per resource
    urlpatterns = []  # optional: plain APIViews, e.g. path("analytics/overview/", …)

and gets /api/v1/segments/, its detail and extra actions, in the schema and the docs.

What a viewset gets for free from settings.REST_FRAMEWORK and messaging.api: JWT / API-key
/ session authentication, problem+json errors (its domain errors subclass
messaging.errors.MailroomError; `register_error_status` for a status other than 400/409),
pagination, django-filter + search + ordering, per-key/user throttles. It declares who may
do what with `capabilities = {"list": policies.can_view_segments, …}` (see
messaging.api.permissions): an action not listed there is refused.

URL names live in the "api" namespace: `reverse("api:segment-detail", args=[pk])`.
"""

from importlib import import_module

from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from messaging.api.docs import SchemaView, SwaggerView, redoc_view
from messaging.api.routing import Router

API_APPS = ("messaging", "marketing", "growth")  # in layer order


def route_modules() -> list:
    """Every app's `<app>.api.routes`; an import error inside one is raised, not hidden."""
    return [import_module(f"{app}.api.routes") for app in API_APPS]


def build_urlpatterns() -> list:
    router = Router()
    extra = []
    for module in route_modules():
        for route in getattr(module, "routes", []):
            router.register(route.prefix, route.viewset, basename=route.basename)
        extra += getattr(module, "urlpatterns", [])
    return [
        path("auth/token/", TokenObtainPairView.as_view(), name="token-obtain"),
        path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
        path("schema/", SchemaView.as_view(), name="schema"),
        path("docs/", SwaggerView.as_view(), name="swagger-ui"),
        path("redoc/", redoc_view(), name="redoc"),
        *extra,
        *router.urls,
    ]


urlpatterns = build_urlpatterns()
