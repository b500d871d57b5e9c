"""The messaging app's API resources, mounted by config/api.py under /api/v1/."""

from django.urls import path

from messaging.api.contacts import ContactViewSet, UnsubscribeView
from messaging.api.content import TemplateViewSet
from messaging.api.delivery import MessageStatsView, MessageViewSet, SuppressionViewSet
from messaging.api.routing import Route
from messaging.api.webhooks import WebhookDeliveryViewSet, WebhookEndpointViewSet

routes = [
    Route("contacts", ContactViewSet, "contact"),
    Route("templates", TemplateViewSet, "template"),
    Route("messages", MessageViewSet, "message"),
    Route("suppressions", SuppressionViewSet, "suppression"),
    Route("webhooks/endpoints", WebhookEndpointViewSet, "webhook-endpoint"),
    Route("webhooks/deliveries", WebhookDeliveryViewSet, "webhook-delivery"),
]

urlpatterns = [
    path("unsubscribe/", UnsubscribeView.as_view(), name="unsubscribe"),
    path("stats/messages/", MessageStatsView.as_view(), name="message-stats"),
]
