"""How an app lists its API resources for config/api.py to mount under /api/v1/."""

from dataclasses import dataclass

from rest_framework.routers import APIRootView, DefaultRouter
from rest_framework.viewsets import ViewSetMixin

from messaging import policies


@dataclass(frozen=True)
class Route:
    """One viewset on the API's router: `Route("segments", SegmentViewSet)` serves
    /api/v1/segments/ (list, detail and the viewset's extra actions)."""

    prefix: str
    viewset: type[ViewSetMixin]
    basename: str | None = None


class ApiRootView(APIRootView):
    """GET /api/v1/: links to every resource."""

    capabilities = {"get": policies.can_use_api}


class Router(DefaultRouter):
    APIRootView = ApiRootView
