"""What a recipient does from a message: unsubscribe in one click, choose topics per
channel, how often to hear from us, a pause, a language. Every change writes a
ConsentRecord (subscriptions through messaging.consent, contact-wide choices through
`record_preference_change`) and an audit entry, in the action's one transaction."""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.consent import ConsentContext, normalise_address, record_preference_change, subscribe, suppress_address, unsubscribe
from messaging.contacts import update_contact
from messaging.delivery.inbound import store_event
from messaging.delivery.throttle import client_address
from messaging.errors import InvalidInput
from messaging.models import Channel, ConsentRecord, Contact, DeliveryEvent, Frequency, OutboxMessage, Subscription, Suppression, Topic

PAUSE_WEEKS = (1, 2, 4, 8)


def _cancel_queued_marketing(*, contact: Contact, channel: str, topic: Topic | None) -> int:
    queued = OutboxMessage.objects.filter(contact=contact, channel=channel, status=OutboxMessage.Status.QUEUED, is_marketing=True)
    if topic is not None:
        queued = queued.filter(topic=topic)
    return queued.update(status=OutboxMessage.Status.CANCELLED, error=_("The contact unsubscribed."))


@transaction.atomic
def unsubscribe_from_message(*, message: OutboxMessage, everything: bool = False, context: ConsentContext) -> None:
    """RFC 8058 one-click (or the confirm page): takes effect at once, queued marketing
    messages of that topic (or all of them) are cancelled. The unsubscribe counts once on
    the message it came from (an UNSUBSCRIBED event), and so on its campaign or automation."""
    store_event(
        kind=DeliveryEvent.Kind.UNSUBSCRIBED,
        message=message,
        external_id=f"unsubscribe:{message.pk}",
        payload={"scope": "all" if everything else "topic", "source": context.source},
    )
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
def set_marketing_frequency(*, actor: AbstractBaseUser | None, contact: Contact, frequency: str, context: ConsentContext) -> bool:
    """ "Everything" or "weekly digest only" (enforced at send time by messaging.delivery.sending.gate)."""
    if frequency not in Frequency.values:
        raise InvalidInput(_("Unknown frequency."), fields={"frequency": [_("Unknown frequency.")]})
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.marketing_frequency == frequency:
        return False
    before = contact.marketing_frequency
    contact.marketing_frequency = frequency
    contact.save(update_fields=["marketing_frequency", "updated_at"])
    record_preference_change(
        actor=actor, contact=contact, action=ConsentRecord.Action.FREQUENCY, details={"before": before, "after": frequency}, context=context
    )
    return True


@transaction.atomic
def pause_marketing(*, actor: AbstractBaseUser | None, contact: Contact, weeks: int, context: ConsentContext) -> Contact:
    """No marketing message for `weeks` weeks (0: resume now). Transactional messages still
    go. Messages due during the pause end suppressed at send time, not deferred: a pause
    means "not now", and a pile of stale promotions on the day it ends is not what was asked."""
    if weeks != 0 and weeks not in PAUSE_WEEKS:
        raise InvalidInput(_("Choose a pause of 1, 2, 4 or 8 weeks."), fields={"pause": [_("Unknown duration.")]})
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    now = timezone.now()
    if weeks == 0:
        if contact.paused_until is None or contact.paused_until <= now:
            return contact
        contact.paused_until = None
        action, details = ConsentRecord.Action.RESUMED, {}
    else:
        contact.paused_until = now + timedelta(weeks=weeks)
        action, details = ConsentRecord.Action.PAUSED, {"weeks": weeks, "until": contact.paused_until.isoformat()}
    contact.save(update_fields=["paused_until", "updated_at"])
    record_preference_change(actor=actor, contact=contact, action=action, details=details, context=context)
    return contact


@transaction.atomic
def update_preferences(
    *,
    contact: Contact,
    wanted: set[tuple[int, str]],
    locale: str | None,
    context: ConsentContext,
    frequency: str | None = None,
    pause_weeks: int | None = None,
) -> int:
    """Set the contact's marketing subscriptions to exactly `wanted` (and, when given, the
    language, the frequency and a pause); returns the number of subscription changes.
    Every change writes a consent record."""
    marketing = {topic.pk: topic for topic in Topic.objects.filter(kind=Topic.Kind.MARKETING)}
    wanted = {(topic_id, channel) for topic_id, channel in wanted if topic_id in marketing and channel in Channel.values}
    have = {choice for choice in current_choices(contact) if choice[0] in marketing}
    for topic_id, channel in sorted(wanted - have):
        subscribe(actor=None, contact=contact, topic=marketing[topic_id], channel=channel, context=context)
    for topic_id, channel in sorted(have - wanted):
        unsubscribe(actor=None, contact=contact, topic=marketing[topic_id], channel=channel, context=context)
        _cancel_queued_marketing(contact=contact, channel=channel, topic=marketing[topic_id])
    if locale and locale != contact.locale:
        before = contact.locale
        update_contact(actor=None, contact=contact, locale=locale)
        record_preference_change(
            actor=None, contact=contact, action=ConsentRecord.Action.LANGUAGE, details={"before": before, "after": locale}, context=context
        )
    if frequency is not None:
        set_marketing_frequency(actor=None, contact=contact, frequency=frequency, context=context)
    if pause_weeks is not None:
        pause_marketing(actor=None, contact=contact, weeks=pause_weeks, context=context)
    return len(wanted ^ have)


def consent_context(request) -> ConsentContext:
    return ConsentContext(
        source=ConsentRecord.Source.PREFERENCE_CENTER,
        ip_address=client_address(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        wording_version="preferences-v1",
    )


@transaction.atomic
def set_subscriptions(
    *, actor: AbstractBaseUser | None, contact: Contact, choices: list[tuple[Topic, str, str]], context: ConsentContext
) -> list[Subscription]:
    """Set each (topic, channel) of a contact to a status, from the API or a console form.
    Every change writes a consent record; a withdrawal also cancels the queued marketing
    messages of that topic on that channel."""
    if contact.erased_at or contact.deleted_at:
        raise InvalidInput(_("A deleted or erased contact cannot be changed."))
    result = []
    for topic, channel, status in choices:
        if status == Subscription.Status.SUBSCRIBED:
            result.append(subscribe(actor=actor, contact=contact, topic=topic, channel=channel, context=context))
        elif status == Subscription.Status.UNSUBSCRIBED:
            result += unsubscribe(actor=actor, contact=contact, topic=topic, channel=channel, context=context)
            _cancel_queued_marketing(contact=contact, channel=channel, topic=topic)
        else:
            raise InvalidInput(_("Unknown subscription status “%(status)s”.") % {"status": status}, fields={"status": [_("Unknown.")]})
    return result


@transaction.atomic
def unsubscribe_contact(
    *, actor: AbstractBaseUser | None, contact: Contact, topic: Topic | None, channel: str, context: ConsentContext
) -> list[Subscription]:
    """Withdraw consent for one topic (or all of them) on a channel, at once: queued marketing
    messages of that topic (or all of them) on that channel are cancelled."""
    subscriptions = unsubscribe(actor=actor, contact=contact, topic=topic, channel=channel, context=context)
    _cancel_queued_marketing(contact=contact, channel=channel, topic=topic)
    return subscriptions


@dataclass(frozen=True)
class Unsubscribed:
    contact: Contact | None
    subscriptions: list[Subscription]
    suppression: Suppression | None


@transaction.atomic
def unsubscribe_address(
    *, actor: AbstractBaseUser | None, address: str, channel: str, topic: Topic | None, context: ConsentContext
) -> Unsubscribed:
    """Unsubscribe whoever holds an address. Without a contact behind it there is no consent
    to withdraw per topic, so the address is suppressed on that channel (as for a one-click
    unsubscribe from a message sent to a raw address)."""
    address = normalise_address(address, channel)
    lookup = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.WHATSAPP: "phone"}.get(channel)
    contact = Contact.objects.active().filter(**{lookup: address}).first() if lookup else None
    if contact is None:
        suppression = suppress_address(actor=actor, address=address, channel=channel, reason=Suppression.Reason.UNSUBSCRIBE)
        return Unsubscribed(contact=None, subscriptions=[], suppression=suppression)
    subscriptions = unsubscribe_contact(actor=actor, contact=contact, topic=topic, channel=channel, context=context)
    return Unsubscribed(contact=contact, subscriptions=subscriptions, suppression=None)
