from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GrowthConfig(AppConfig):
    name = "growth"
    verbose_name = _("Growth")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from growth import registry, schedules
        from growth.receivers import on_event_tracked
        from marketing.events import event_tracked

        event_tracked.connect(on_event_tracked, dispatch_uid="growth_order_events")

        from growth.receivers import on_contact_erased
        from messaging.erasure import contact_erased

        contact_erased.connect(on_contact_erased, dispatch_uid="growth_erasure")
        registry.register_merge_tags()
        registry.register_segment_fields()
        schedules.register()

        from growth.timeline import register_timeline_sources

        register_timeline_sources()

        from growth import demo
        from messaging.demo import register_demo_loader

        register_demo_loader(demo.load)
