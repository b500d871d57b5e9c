"""What comes back from providers: delivery events and inbound messages (SMS/WhatsApp
replies). Both are idempotent by the provider's id (an inbound message without one, by a
hash of its signed body), so a replayed webhook changes nothing."""

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging.consent import ConsentContext, suppress_address, unsubscribe
from messaging.models import ConsentRecord, Contact, DeliveryEvent, Inbox, InboxMessage, OutboxMessage, Provider, Suppression
from messaging.storable import UNSTORABLE
from messaging.webhooks.emit import emit_message_event

logger = logging.getLogger(__name__)

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "ARRÊT", "DESABONNER", "DÉSABONNER"}
# A contact answered (not a STOP): sent with `inbound`. Higher apps turn it into an event
# (marketing: `message_replied`, which automations and re-engagement react to).
contact_replied = Signal()


DEFAULT_HANDLER = "messaging.delivery.inbound.handle_stop_words"
# What an inbox may hand its messages to: {dotted path: label}. A handler is imported and
# called, so a free-text path is a way to run anything on the server (like a schedule's
# function): only registered ones run. Host apps add theirs with `register_inbound_handler`
# from their AppConfig.ready().
HANDLERS: dict[str, str] = {DEFAULT_HANDLER: _("STOP words unsubscribe the sender")}


def register_inbound_handler(path: str, label: str) -> None:
    HANDLERS[path] = label


def handler_choices() -> list[tuple[str, str]]:
    return [(path, str(label)) for path, label in HANDLERS.items()]


def check_inbound_handler(path: str) -> None:
    """The one rule for what an inbox may call; ValidationError naming the function."""
    if path not in HANDLERS:
        raise ValidationError(
            {"handler": gettext("%(handler)s is not one of Mailroom's inbound handlers; pick one from the list.") % {"handler": path}},
            code="unregistered_handler",
        )


def is_stop_word(body: str) -> bool:
    return body.strip().upper().rstrip(".!") in STOP_WORDS


def store_event(
    *,
    kind: str,
    message: OutboxMessage | None,
    external_id: str | None = None,
    payload: dict | None = None,
    occurred_at: datetime | None = None,
) -> DeliveryEvent | None:
    """Insert one event row, nothing else; None when its external id is stored already (the
    same webhook twice, a second unsubscribe from one message): each lands once."""
    try:
        with transaction.atomic():
            event = DeliveryEvent.objects.create(
                message=message,
                kind=kind,
                external_id=external_id or None,
                payload=payload or {},
                occurred_at=occurred_at or timezone.now(),
            )
            emit_message_event(kind, message_id=event.message_id, occurred_at=event.occurred_at)  # with the event, or neither
    except IntegrityError:
        return None
    return event


@transaction.atomic
def record_delivery_event(
    *,
    kind: str,
    provider: Provider | None = None,
    provider_message_id: str = "",
    message: OutboxMessage | None = None,
    external_id: str | None = None,
    payload: dict | None = None,
    occurred_at: datetime | None = None,
) -> DeliveryEvent | None:
    """Store one event; bounces and complaints suppress the address. Returns None for a replay."""
    if kind not in DeliveryEvent.Kind.values:
        raise ValueError(f"unknown event kind {kind!r}")
    if message is None and provider_message_id:
        candidates = OutboxMessage.objects.filter(provider_message_id=provider_message_id)
        if provider is not None:
            candidates = candidates.filter(provider=provider)
        message = candidates.first()
    event = store_event(kind=kind, message=message, external_id=external_id, payload=payload, occurred_at=occurred_at)
    if event is None:
        return None  # the same webhook delivered twice
    if message is not None and kind in (DeliveryEvent.Kind.BOUNCED, DeliveryEvent.Kind.COMPLAINED):
        reason = Suppression.Reason.HARD_BOUNCE if kind == DeliveryEvent.Kind.BOUNCED else Suppression.Reason.COMPLAINT
        suppress_address(
            actor=None, address=message.to_address, channel=message.channel, reason=reason, note=f"event {external_id or event.pk}"
        )
    if message is not None and message.contact_id and kind in (DeliveryEvent.Kind.COMPLAINED, DeliveryEvent.Kind.UNSUBSCRIBED):
        unsubscribe(
            actor=None,
            contact=message.contact,
            topic=message.topic if kind == DeliveryEvent.Kind.UNSUBSCRIBED else None,
            channel=message.channel,
            context=ConsentContext(source=ConsentRecord.Source.SYSTEM),
        )
    return event


def inbound_key(*, provider: Provider, raw_body: bytes) -> str:
    """The idempotency key of an inbound delivery that carries no provider id: the provider
    and a hash of the exact signed body. A replayed capture is byte-identical, so it is a
    duplicate; two real messages differ in some field (an id, a timestamp), so both are kept.
    The one loss: the same words from the same number through a provider that sends no id
    and no timestamp are indistinguishable from a replay, and are kept once."""
    return f"body:{provider.pk}:{hashlib.sha256(raw_body).hexdigest()}"


def receive_inbound(
    *,
    channel: str,
    from_address: str,
    to_address: str,
    body: str,
    external_id: str | None = None,
    inbox: Inbox | None = None,
    in_reply_to: OutboxMessage | None = None,
    handled_as: str | None = None,
) -> InboxMessage | None:
    """Store an inbound message and hand it to its inbox's handler (a dotted path).
    The handler runs after the message is stored, so a failing handler loses nothing.
    `inbox`: the one it was read from (an IMAP mailbox), else the one at `to_address`.
    `handled_as`: stored handled with that result, neither counted nor handed to the
    handler (an auto-reply). None for a message already stored (same external id)."""
    with transaction.atomic():
        inbox = inbox or Inbox.objects.filter(channel=channel, address=to_address, is_active=True).first()
        try:
            with transaction.atomic():
                inbound = InboxMessage.objects.create(
                    inbox=inbox,
                    channel=channel,
                    from_address=from_address,
                    to_address=to_address,
                    body=body,
                    external_id=external_id or None,
                    contact=sender_contact(channel=channel, address=from_address),
                    in_reply_to=in_reply_to,
                    status=InboxMessage.Status.RECEIVED if handled_as is None else InboxMessage.Status.HANDLED,
                    result=handled_as or "",
                )
        except IntegrityError:
            return None
    return inbound if handled_as is not None else process_inbound(inbound)


def sender_contact(*, channel: str, address: str) -> Contact | None:
    """Who sent it: the contact with that phone number (SMS, WhatsApp) or email address."""
    if channel in ("sms", "whatsapp"):
        return Contact.objects.filter(phone=address).first() if address else None
    if channel == "email" and (address := address.strip().lower()):
        return Contact.objects.filter(email=address).first()
    return None


OUR_MESSAGE_ID = re.compile(r"<m(\d{1,18})\.[0-9a-f]{12}@[^<>\s]+>")


def named_message(*message_ids: str) -> OutboxMessage | None:
    """The message of ours that one of these Message-IDs names (an email's In-Reply-To or
    References, a bounce's original). Ours carry the row's id (messaging.providers.email.
    headers.message_id_for), checked against the Message-ID stored at send time; others are looked
    up as the provider's id. Both are indexed: no scan of the outbox."""
    for value in message_ids:
        for found in OUR_MESSAGE_ID.finditer(value or ""):
            message = OutboxMessage.objects.filter(pk=int(found.group(1)), message_id=found.group(0)).first()
            if message is not None:
                return message
    for value in message_ids:
        for candidate in re.findall(r"<[^<>\s]{1,198}>", value or ""):
            message = OutboxMessage.objects.filter(provider_message_id=candidate, channel="email").first()
            if message is not None:
                return message
    return None


def process_inbound(inbound: InboxMessage) -> InboxMessage:
    """What follows storing a message: count the reply, run the inbox's handler. Called
    once per message, by `receive_inbound` or, when a crash came between, by the sweep."""
    if inbound.contact_id is not None and not is_stop_word(inbound.body):
        record_reply(inbound)
    return run_handler(inbound)


def process_stranded_inbound(*, older_than: timedelta, limit: int = 500) -> int:
    """Process messages still RECEIVED `older_than` after arrival: the process that stored
    them died before their handler ran. Each is claimed under a row lock (skip_locked; an
    IMMEDIATE transaction on SQLite) and re-read as RECEIVED, then its handler's outcome
    is saved in the same transaction, so two sweeps never handle one message twice."""
    cutoff = timezone.now() - older_than
    stranded = InboxMessage.objects.filter(status=InboxMessage.Status.RECEIVED, received_at__lte=cutoff)
    handled = 0
    for pk in list(stranded.order_by("pk").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            inbound = stranded.select_for_update(skip_locked=True, of=("self",)).select_related("inbox", "contact").filter(pk=pk).first()
            if inbound is None:  # another sweep holds it or has handled it
                continue
            process_inbound(inbound)
            handled += 1
    return handled


def record_reply(inbound: InboxMessage) -> None:
    """The reply counts on the message it answers (the `replied` figure of reports) when it
    names one of the contact's (an email's In-Reply-To), else on the last message sent to
    the contact on that channel, and is announced to the higher apps."""
    last = inbound.in_reply_to if inbound.in_reply_to and inbound.in_reply_to.contact_id == inbound.contact_id else None
    last = last or (
        OutboxMessage.objects.filter(contact_id=inbound.contact_id, channel=inbound.channel, status=OutboxMessage.Status.SENT)
        .order_by("-sent_at", "-pk")
        .first()
    )
    if last is not None:
        record_delivery_event(
            kind=DeliveryEvent.Kind.REPLIED, message=last, external_id=f"inbound:{inbound.pk}", payload={"inbound": inbound.pk}
        )
    contact_replied.send(sender=InboxMessage, inbound=inbound)


def run_handler(inbound: InboxMessage) -> InboxMessage:
    """Call the inbox's handler; its result or error is kept on the row."""
    handler_path = inbound.inbox.handler if inbound.inbox else DEFAULT_HANDLER
    try:
        check_inbound_handler(handler_path)  # a row that got in another way runs nothing
        with transaction.atomic():  # a failing handler leaves none of its writes (and no broken transaction)
            result = import_string(handler_path)(inbound)
        inbound.status, inbound.result = InboxMessage.Status.HANDLED, str(result or "")[:2000]
    except Exception as error:  # a host app's handler must not make us drop the message
        logger.exception("inbound %s: handler %s failed", inbound.pk, handler_path)
        reason = " ".join(error.messages) if isinstance(error, ValidationError) else repr(error)
        inbound.status, inbound.result = InboxMessage.Status.FAILED, f"{handler_path}: {reason}"[:2000]
    inbound.save(update_fields=["status", "result"])
    return inbound


def handle_stop_words(inbound: InboxMessage) -> str:
    """The default handler: "STOP" (and its usual variants, English and French) unsubscribes
    the sender from everything on that channel and suppresses the number."""
    if not is_stop_word(inbound.body):
        return "no action"
    suppress_address(
        actor=None, address=inbound.from_address, channel=inbound.channel, reason=Suppression.Reason.UNSUBSCRIBE, note="STOP reply"
    )
    if inbound.contact is not None:
        unsubscribe(actor=None, contact=inbound.contact, channel=inbound.channel, context=ConsentContext(source=ConsentRecord.Source.REPLY))
    return "unsubscribed"


ANYMAIL_EVENTS = {
    "delivered": DeliveryEvent.Kind.DELIVERED,
    "opened": DeliveryEvent.Kind.OPENED,
    "clicked": DeliveryEvent.Kind.CLICKED,
    "bounced": DeliveryEvent.Kind.BOUNCED,
    "complained": DeliveryEvent.Kind.COMPLAINED,
    "unsubscribed": DeliveryEvent.Kind.UNSUBSCRIBED,
    "rejected": DeliveryEvent.Kind.FAILED,
    "failed": DeliveryEvent.Kind.FAILED,
}


def _storable(text: str | None, max_length: int = 2000) -> str:
    """An ESP's text as we can keep it. Not refused as at our own entry points: an ESP whose
    webhook is refused retries it forever, so an unstorable character is replaced instead."""
    return UNSTORABLE.sub("\ufffd", str(text or ""))[:max_length]


def anymail_event_key(esp_name: str, event) -> str:
    """The idempotency key of an ESP event. Most ESPs give each event an id (SES: the SNS
    notification; SendGrid: sg_event_id; Mailgun: the signature token); Postmark gives one
    only to bounces and complaints, so its other events are keyed by what they say (a
    replay says the same; two real opens differ in their time)."""
    if event.event_id:
        key = f"{esp_name}:{event.event_id}:{event.recipient or ''}"
    else:
        timestamp = event.timestamp.isoformat() if event.timestamp else ""
        facts = [event.event_type, event.message_id, event.recipient, timestamp, event.click_url, event.user_agent]
        key = f"{esp_name}:sha256:" + hashlib.sha256("\x1f".join(str(fact or "") for fact in facts).encode()).hexdigest()
    if len(key) > 200:  # DeliveryEvent.external_id
        key = f"{esp_name[:40]}:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def on_anymail_tracking(sender, event, esp_name: str, **kwargs) -> None:
    """django-anymail's normalised ESP webhooks (it verifies their credentials) → our events,
    on the message whose provider id is the ESP's message id, once per ESP event."""
    kind = ANYMAIL_EVENTS.get(event.event_type)
    if kind is None:
        return
    occurred_at = event.timestamp
    if occurred_at is not None and timezone.is_naive(occurred_at):  # e.g. Postmark's ReceivedAt
        occurred_at = timezone.make_aware(occurred_at, UTC)
    record_delivery_event(
        kind=kind,
        provider_message_id=event.message_id or "",
        external_id=anymail_event_key(esp_name, event),
        payload={
            "esp": esp_name,
            "recipient": _storable(event.recipient),
            "description": _storable(event.description),
            "mta_response": _storable(event.mta_response),
            "click_url": _storable(event.click_url),
        },
        occurred_at=occurred_at,
    )


def on_anymail_inbound(sender, event, esp_name: str, **kwargs) -> None:
    """An email through an ESP's inbound webhook (anymail verified its credential) → the email
    inbox of the address it was sent to, and that inbox's handler, like an SMS reply; once
    per ESP message id (an ESP retrying the webhook changes nothing)."""
    message = event.message
    if message is None:
        return
    sender_address = message.from_email.addr_spec if message.from_email else (message.envelope_sender or "")
    recipient = message.envelope_recipient or (message.to[0].addr_spec if message.to else "")
    if not sender_address or not recipient:
        logger.warning("%s inbound email without a sender or recipient: ignored", esp_name)
        return
    identity = event.event_id or message.get("Message-ID") or hashlib.sha256(message.as_bytes()).hexdigest()
    external_id = f"{esp_name}:inbound:{identity}"
    if len(external_id) > 200:
        external_id = f"{esp_name[:40]}:inbound:sha256:" + hashlib.sha256(external_id.encode()).hexdigest()
    receive_inbound(
        channel="email",
        from_address=_storable(sender_address, 254),
        to_address=_storable(recipient, 254),
        body=_storable(message.stripped_text or message.text, 100_000),
        external_id=external_id,
        in_reply_to=named_message(str(message.get("In-Reply-To", "")), str(message.get("References", ""))),
    )
