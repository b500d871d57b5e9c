"""Consent actions: subscribe, unsubscribe, suppress. Each change of consent state
appends a ConsentRecord in the same transaction, so the log and the state never disagree.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from messaging.audit import record_audit
from messaging.contact_fields import normalise_email, normalise_phone
from messaging.errors import InvalidInput
from messaging.models import Channel, ConsentRecord, Contact, Subscription, Suppression, Topic
from messaging.models.consent import hashed_address
from messaging.webhooks.emit import emit


@dataclass(frozen=True)
class ConsentContext:
    """How consent was given or withdrawn (kept in the append-only log)."""

    source: str = ConsentRecord.Source.CONSOLE
    ip_address: str | None = None
    user_agent: str = ""
    wording_version: str = ""
    legal_basis: str = ""  # a LegalBasis value, when the source records one (imports do)
    details: dict | None = None  # kept on the record as is (a sign-up form: the form and the wording shown)


def _check_channel(channel: str) -> None:
    if channel not in Channel.values:
        raise InvalidInput(_("Unknown channel “%(channel)s”.") % {"channel": channel}, fields={"channel": [_("Unknown channel.")]})


def _set_status(*, actor, contact: Contact, topic: Topic, channel: str, status: str, context: ConsentContext) -> tuple[Subscription, bool]:
    _check_channel(channel)
    subscription, created = Subscription.objects.select_for_update().get_or_create(
        contact=contact, topic=topic, channel=channel, defaults={"status": status}
    )
    changed = created or subscription.status != status
    if not changed:
        return subscription, False
    previous = None if created else subscription.status
    subscription.status = status
    subscription.save(update_fields=["status", "updated_at"])
    ConsentRecord.objects.create(
        contact=contact,
        topic=topic,
        channel=channel,
        action=ConsentRecord.Action.GRANTED if status == Subscription.Status.SUBSCRIBED else ConsentRecord.Action.WITHDRAWN,
        source=context.source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        ip_address=context.ip_address,
        user_agent=context.user_agent[:300],
        wording_version=context.wording_version,
        legal_basis=context.legal_basis,
        details=context.details or {},
    )
    record_audit(
        actor=actor,
        verb="subscribed" if status == Subscription.Status.SUBSCRIBED else "unsubscribed",
        target=subscription,
        changes={"status": {"before": previous, "after": status}},
    )
    emit(
        "contact.subscribed" if status == Subscription.Status.SUBSCRIBED else "contact.unsubscribed",
        {"contact_id": contact.pk, "topic": topic.key, "channel": channel, "source": context.source},
    )
    return subscription, True


@transaction.atomic
def subscribe(
    *,
    actor: AbstractBaseUser | None,
    contact: Contact,
    topic: Topic,
    channel: str = Channel.EMAIL,
    context: ConsentContext = ConsentContext(),
) -> Subscription:
    """Record that the contact agreed to hear about `topic` on `channel`. Idempotent."""
    if contact.erased_at or contact.deleted_at:
        raise InvalidInput(_("A deleted or erased contact cannot be subscribed."))
    subscription, _changed = _set_status(
        actor=actor, contact=contact, topic=topic, channel=channel, status=Subscription.Status.SUBSCRIBED, context=context
    )
    return subscription


@transaction.atomic
def unsubscribe(
    *,
    actor: AbstractBaseUser | None,
    contact: Contact,
    topic: Topic | None = None,
    channel: str = Channel.EMAIL,
    context: ConsentContext = ConsentContext(),
) -> list[Subscription]:
    """Withdraw consent for one topic, or for every topic when `topic` is None."""
    topics = [topic] if topic is not None else list(Topic.objects.all())
    return [
        _set_status(actor=actor, contact=contact, topic=t, channel=channel, status=Subscription.Status.UNSUBSCRIBED, context=context)[0]
        for t in topics
    ]


def normalise_address(address: str, channel: str) -> str:
    _check_channel(channel)
    try:
        if channel == Channel.EMAIL:
            value = normalise_email(address)
        elif channel in (Channel.SMS, Channel.WHATSAPP):
            value = normalise_phone(address)
        else:
            value = (address or "").strip() or None
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), fields={"address": error.messages}) from error
    if not value:
        raise InvalidInput(_("An address is required."), fields={"address": [_("This field is required.")]})
    return value


@transaction.atomic
def suppress_address(*, actor: AbstractBaseUser | None, address: str, channel: str, reason: str, note: str = "") -> Suppression:
    """Never send to this address on this channel again. Idempotent: the first reason stays."""
    if reason not in Suppression.Reason.values:
        raise InvalidInput(_("Unknown suppression reason “%(reason)s”.") % {"reason": reason})
    address = normalise_address(address, channel)
    erased = Suppression.objects.filter(address=hashed_address(address), channel=channel).first()
    if erased is not None:  # suppressed before its contact was erased
        return erased
    suppression, created = Suppression.objects.get_or_create(
        address=address,
        channel=channel,
        defaults={
            "reason": reason,
            "note": note[:300],
            "created_by": actor if actor is not None and actor.is_authenticated else None,
        },
    )
    if created:
        record_audit(actor=actor, verb="suppressed", target=suppression, changes={"reason": {"before": None, "after": reason}})
    return suppression


@transaction.atomic
def lift_suppression(*, actor: AbstractBaseUser | None, suppression: Suppression) -> None:
    record_audit(actor=actor, verb="unsuppressed", target=suppression, changes={"reason": {"before": suppression.reason, "after": None}})
    suppression.delete()


def record_preference_change(
    *, actor: AbstractBaseUser | None, contact: Contact, action: str, details: dict, context: ConsentContext
) -> ConsentRecord:
    """Log a contact-wide choice (pause, resume, frequency, language) in the consent log,
    with an audit entry. Callers change the contact in the same transaction."""
    record = ConsentRecord.objects.create(
        contact=contact,
        topic=None,
        channel="",
        action=action,
        details=details,
        source=context.source,
        actor=actor if actor is not None and actor.is_authenticated else None,
        ip_address=context.ip_address,
        user_agent=context.user_agent[:300],
        wording_version=context.wording_version,
    )
    record_audit(actor=actor, verb=f"preference-{action}", target=contact, changes={action: {"before": None, "after": details}})
    emit("contact.consent_changed", {"contact_id": contact.pk, "action": action, "details": details, "source": context.source})
    return record
