"""What a recipient does from a message: unsubscribe in one click, or choose topics."""

from django.db import transaction
from django.utils.translation import gettext as _

from messaging.consent import ConsentContext, subscribe, suppress_address, unsubscribe
from messaging.contacts import update_contact
from messaging.models import Channel, ConsentRecord, Contact, OutboxMessage, Subscription, Suppression, Topic


def _cancel_queued_marketing(*, contact: Contact, channel: str, topic: Topic | None) -> int:
    queued = OutboxMessage.objects.filter(contact=contact, channel=channel, status=OutboxMessage.Status.QUEUED, is_marketing=True)
    if topic is not None:
        queued = queued.filter(topic=topic)
    return queued.update(status=OutboxMessage.Status.CANCELLED, error=_("The contact unsubscribed."))


@transaction.atomic
def unsubscribe_from_message(*, message: OutboxMessage, everything: bool = False, context: ConsentContext) -> None:
    """RFC 8058 one-click (or the confirm page): takes effect at once, queued marketing
    messages of that topic (or all of them) are cancelled."""
    contact = message.contact
    if contact is None:  # a message to a raw address: all we can do is never send there again
        suppress_address(actor=None, address=message.to_address, channel=message.channel, reason=Suppression.Reason.UNSUBSCRIBE)
        return
    topic = None if everything else message.topic
    unsubscribe(actor=None, contact=contact, topic=topic, channel=message.channel, context=context)
    _cancel_queued_marketing(contact=contact, channel=message.channel, topic=topic)


def current_choices(contact: Contact) -> set[tuple[int, str]]:
    return set(Subscription.objects.filter(contact=contact, status=Subscription.Status.SUBSCRIBED).values_list("topic_id", "channel"))


@transaction.atomic
def update_preferences(*, contact: Contact, wanted: set[tuple[int, str]], locale: str | None, context: ConsentContext) -> int:
    """Set the contact's marketing subscriptions to exactly `wanted`; returns the changes.
    Every change writes a consent record (through subscribe/unsubscribe)."""
    marketing = {topic.pk: topic for topic in Topic.objects.filter(kind=Topic.Kind.MARKETING)}
    wanted = {(topic_id, channel) for topic_id, channel in wanted if topic_id in marketing and channel in Channel.values}
    have = {choice for choice in current_choices(contact) if choice[0] in marketing}
    for topic_id, channel in sorted(wanted - have):
        subscribe(actor=None, contact=contact, topic=marketing[topic_id], channel=channel, context=context)
    for topic_id, channel in sorted(have - wanted):
        unsubscribe(actor=None, contact=contact, topic=marketing[topic_id], channel=channel, context=context)
        _cancel_queued_marketing(contact=contact, channel=channel, topic=marketing[topic_id])
    if locale and locale != contact.locale:
        update_contact(actor=None, contact=contact, locale=locale)
    return len(wanted ^ have)


def consent_context(request) -> ConsentContext:
    return ConsentContext(
        source=ConsentRecord.Source.PREFERENCE_CENTER,
        ip_address=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        wording_version="preferences-v1",
    )
