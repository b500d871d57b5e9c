"""Whether a condition step's check holds for one run: consent, a contact attribute, a
trigger property, a tag, or an event since the run started."""

from marketing.automations.matching import compare, lookup
from marketing.models import AutomationRun, Event
from messaging.models import Channel, Subscription


def condition_holds(run: AutomationRun, config: dict) -> bool:
    check, contact = config["check"], run.contact
    if check == "consent":
        return Subscription.objects.filter(
            contact=contact,
            topic__key=config.get("topic", ""),
            channel=config.get("channel", Channel.EMAIL),
            status=Subscription.Status.SUBSCRIBED,
        ).exists()
    if check == "tag":
        return config.get("tag") in (contact.attributes.get("tags") or [])
    if check == "event_since_start":
        return Event.objects.filter(contact=contact, name=config.get("event", ""), occurred_at__gte=run.started_at).exists()
    source = contact.attributes if check == "attribute" else run.context
    return compare(lookup(source, config.get("name", "")), config.get("op", "eq"), config.get("value"))
