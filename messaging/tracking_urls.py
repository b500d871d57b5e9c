"""The two tracking routes alone, for config.wsgi's lean handler (see there). The same
views are in messaging.urls, which is what `reverse` and the test client use."""

from django.urls import path

from messaging.views import public

urlpatterns = [
    path("o/<str:token>.gif", public.open_pixel),
    path("t/<int:link_id>/<str:token>/", public.click),
]
