from django.urls import path

from messaging.signup import views as signup
from messaging.views import accounts, public, webhooks

app_name = "messaging"

urlpatterns = [
    path("o/<str:token>.gif", public.open_pixel, name="open"),
    path("t/<int:link_id>/<str:token>/", public.click, name="click"),
    path("u/<str:token>/", public.unsubscribe_page, name="unsubscribe"),
    path("p/<str:token>/", public.preferences_page, name="preferences"),
    path("v/<str:token>/", public.view_in_browser, name="view-in-browser"),
    path("e/verify/<str:token>/", accounts.verify_email_page, name="verify-email"),
    path("e/reset/", accounts.password_reset_request, name="password-reset"),
    path("e/reset/<str:token>/", accounts.password_reset_confirm, name="password-reset-confirm"),
    path("f/<slug:slug>/", signup.signup_page, name="signup-form"),
    path("f/c/<str:token>/", signup.confirm_page, name="signup-confirm"),
    path("webhooks/providers/<int:provider_id>/events", webhooks.delivery_events, name="webhook-events"),
    path("webhooks/providers/<int:provider_id>/inbound", webhooks.inbound_message, name="webhook-inbound"),
]
