from django.urls import path

from messaging.views import public, webhooks

app_name = "messaging"

urlpatterns = [
    path("t/<int:link_id>/<str:token>/", public.click, name="click"),
    path("u/<str:token>/", public.unsubscribe_page, name="unsubscribe"),
    path("p/<str:token>/", public.preferences_page, name="preferences"),
    path("v/<str:token>/", public.view_in_browser, name="view-in-browser"),
    path("webhooks/providers/<int:provider_id>/events", webhooks.delivery_events, name="webhook-events"),
    path("webhooks/providers/<int:provider_id>/inbound", webhooks.inbound_message, name="webhook-inbound"),
]
