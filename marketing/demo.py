"""Marketing's demo data for `seed_demo`: a few segments over the demo contacts and the
welcome automation, active (it sends only when a `user_registered` event arrives)."""

from marketing.automations.actions import activate_automation, create_automation_from_preset
from marketing.models import Automation, Segment
from marketing.segments.actions import create_segment, refresh_segment
from messaging.content.catalog import sync_catalog
from messaging.errors import MailroomError
from messaging.models import Template


def rule(field: str, operator: str, value, **extra) -> dict:
    return {"type": "rule", "field": field, "operator": operator, "value": value, **extra}


SEGMENTS = [
    ("All customers", "Contacts whose lifecycle stage is customer.", rule("attribute", "equals", "customer", key="lifecycle_stage")),
    ("VIP", "Contacts tagged vip.", rule("attribute", "includes", "vip", key="tags")),
    ("French speakers", "Contacts who read French.", rule("locale", "equals", "fr")),
]


def load() -> str:
    added = []
    for name, description, tree in SEGMENTS:
        if Segment.objects.filter(name=name).exists():
            continue
        segment = create_segment(name=name, actor=None, description=description, rules={"type": "group", "op": "and", "rules": [tree]})
        refresh_segment(segment=segment, actor=None)
        added.append(name)
    if not Automation.objects.filter(preset="welcome").exists():
        if not Template.objects.filter(key="welcome").exists():
            sync_catalog()  # the preset sends the catalog's welcome email
        automation = create_automation_from_preset(actor=None, key="welcome")
        try:
            activate_automation(actor=None, automation=automation)
            added.append("welcome automation (active)")
        except MailroomError:  # its template is not loaded yet (sync_templates)
            added.append("welcome automation (draft: run sync_templates, then activate it)")
    return f"Marketing demo: {', '.join(added) or 'nothing new'}."
