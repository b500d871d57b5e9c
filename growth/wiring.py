"""How growth plugs into the lower apps: signal receivers, merge tags, segment fields,
schedules, timeline sources and the demo loader. Run once from GrowthConfig.ready()."""

from growth import demo, registry, schedules, webhook_events
from growth.receivers import on_contact_erased, on_event_tracked
from growth.timeline import register_timeline_sources
from marketing.events import event_tracked
from messaging.demo import register_demo_loader
from messaging.erasure import contact_erased


def connect() -> None:
    event_tracked.connect(on_event_tracked, dispatch_uid="growth_order_events")
    contact_erased.connect(on_contact_erased, dispatch_uid="growth_erasure")
    registry.register_merge_tags()
    registry.register_segment_fields()
    schedules.register()
    webhook_events.register()
    register_timeline_sources()
    register_demo_loader(demo.load)
