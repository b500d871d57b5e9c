from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketingConfig(AppConfig):
    name = "marketing"
    verbose_name = _("Marketing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from marketing import schedules

        schedules.register()

        # The built-in segment fields' builders import the models, loaded only by now.
        from marketing.segments.fields.builtin import register_builtin_fields

        register_builtin_fields()

        from marketing.timeline import register_timeline_sources

        register_timeline_sources()

        from marketing import demo
        from messaging.demo import register_demo_loader

        register_demo_loader(demo.load)

        from marketing.automations.triggers import on_event_tracked
        from marketing.events import event_tracked

        event_tracked.connect(on_event_tracked, dispatch_uid="marketing_automations")

        from marketing.automations.approval import on_segment_audience_changed
        from marketing.segments.signals import segment_audience_changed

        segment_audience_changed.connect(on_segment_audience_changed, dispatch_uid="marketing_automation_approvals")

        from marketing.events import on_contact_replied
        from messaging.delivery.inbound import contact_replied

        contact_replied.connect(on_contact_replied, dispatch_uid="marketing_replies")

        from marketing.erasure import on_contact_erased
        from messaging.erasure import contact_erased

        contact_erased.connect(on_contact_erased, dispatch_uid="marketing_erasure")

        from marketing.campaigns.tick import complete_finished_campaigns
        from messaging.delivery.sending import campaign_messages_recorded

        campaign_messages_recorded.connect(complete_finished_campaigns, dispatch_uid="marketing_campaign_completion")

        from django.db.models.signals import pre_save

        from marketing.campaigns.actions import topic_saving
        from messaging.models import Topic

        pre_save.connect(topic_saving, sender=Topic, dispatch_uid="marketing_campaign_topic_approvals")
