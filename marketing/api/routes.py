"""The marketing app's API resources, mounted by config/api.py under /api/v1/."""

from django.urls import path

from marketing.api.analytics import AutomationsView, CampaignsView, DailyView, OverviewView
from marketing.api.automations import AutomationViewSet
from marketing.api.campaigns import CampaignViewSet
from marketing.api.events import EventViewSet, OrderViewSet
from marketing.api.segments import SegmentViewSet
from messaging.api.routing import Route

routes = [
    Route("segments", SegmentViewSet, "segment"),
    Route("events", EventViewSet, "event"),
    Route("orders", OrderViewSet, "order"),
    Route("automations", AutomationViewSet, "automation"),
    Route("campaigns", CampaignViewSet, "campaign"),
]

urlpatterns = [
    path("analytics/overview/", OverviewView.as_view(), name="analytics-overview"),
    path("analytics/daily/", DailyView.as_view(), name="analytics-daily"),
    path("analytics/campaigns/", CampaignsView.as_view(), name="analytics-campaigns"),
    path("analytics/automations/", AutomationsView.as_view(), name="analytics-automations"),
]
