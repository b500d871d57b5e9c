from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from django.views.defaults import page_not_found

from messaging.api.problems import not_found_problem
from messaging.views.metrics import metrics


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


FAVICON = (settings.BASE_DIR / "static" / "mailroom" / "favicon.ico").read_bytes()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links; the same icon as the <link>s."""
    return HttpResponse(FAVICON, content_type="image/x-icon")


urlpatterns = [
    path("", lambda request: redirect("admin:index")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),  # Prometheus; 404 unless MAILROOM_METRICS_TOKEN is set
    path("favicon.ico", favicon, name="favicon"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(("config.api", "api"))),
    # django-anymail's ESP webhooks (tracking, inbound), refused while no credential is set.
    path("webhooks/anymail/", include("messaging.views.esp_webhooks")),
    path("", include("messaging.urls")),
    path("", include("growth.urls")),
    path("", include("marketing.urls")),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Under /api/ a wrong address gets a problem+json 404; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return not_found_problem(request)
    return page_not_found(request, exception)
