"""Mailroom's URLs plus one view that fails: the web path of error reporting under test."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as mailroom_urlpatterns


@csrf_exempt  # a form post from outside, like a webhook
def failing_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(f"could not reach {request.POST.get('email', '')} for {request.GET.get('contact', '')}")


urlpatterns = [path("test-error/", failing_view), *mailroom_urlpatterns]
