"""How marketing plugs into messaging and into itself: schedules, built-in segment fields,
timeline sources, the demo loader and every signal receiver. Run once from
MarketingConfig.ready(); the lower modules send signals and never import their listeners."""

from django.db.models.signals import pre_save

from marketing import demo, schedules, webhook_events
from marketing.analytics.rollups import counted_before
from marketing.automations.approval import on_segment_audience_changed
from marketing.automations.triggers import on_event_tracked, on_signup_confirmed
from marketing.campaigns.actions import on_segment_audience_changing, topic_saving
from marketing.campaigns.metrics import fanout_metrics
from marketing.campaigns.tick import complete_finished_campaigns
from marketing.erasure import on_contact_erased
from marketing.events import event_tracked, on_contact_replied
from marketing.segments.fields.builtin import register_builtin_fields
from marketing.segments.signals import segment_audience_changed, segment_audience_changing
from marketing.timeline import register_timeline_sources
from messaging.delivery.inbound import contact_replied
from messaging.delivery.retention import register_event_horizon
from messaging.delivery.sending import campaign_messages_recorded
from messaging.demo import register_demo_loader
from messaging.erasure import contact_erased
from messaging.metrics import register_metric_source
from messaging.models import Topic
from messaging.signup.signals import signup_confirmed


def connect() -> None:
    schedules.register()
    webhook_events.register()
    register_builtin_fields()
    register_timeline_sources()
    register_demo_loader(demo.load)
    register_event_horizon(counted_before)  # retention never prunes events the rollups have not counted
    register_metric_source(fanout_metrics)
    event_tracked.connect(on_event_tracked, dispatch_uid="marketing_automations")
    signup_confirmed.connect(on_signup_confirmed, dispatch_uid="marketing_automations_form_confirmed")
    segment_audience_changing.connect(on_segment_audience_changing, dispatch_uid="marketing_campaign_approvals")
    segment_audience_changed.connect(on_segment_audience_changed, dispatch_uid="marketing_automation_approvals")
    contact_replied.connect(on_contact_replied, dispatch_uid="marketing_replies")
    contact_erased.connect(on_contact_erased, dispatch_uid="marketing_erasure")
    campaign_messages_recorded.connect(complete_finished_campaigns, dispatch_uid="marketing_campaign_completion")
    pre_save.connect(topic_saving, sender=Topic, dispatch_uid="marketing_campaign_topic_approvals")
