from django.urls import path

from growth.views import public

app_name = "growth"

urlpatterns = [
    path("r/<str:code>/", public.referral_landing, name="referral-landing"),
]
