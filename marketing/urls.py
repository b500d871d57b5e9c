"""Marketing's public endpoints (webhooks from payment providers)."""

from django.urls import path

from marketing.views import webhooks

app_name = "marketing"

urlpatterns = [
    path("webhooks/stripe", webhooks.stripe_webhook, name="webhook-stripe"),
]
