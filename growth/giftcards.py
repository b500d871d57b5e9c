"""Gift-card actions: issue (one or a batch), redeem (partially), refund, disable, expire.

A code is generated with `secrets` from an alphabet without look-alikes (no 0/O, 1/I),
16 characters (80 bits), returned once by `issue_gift_card` and stored only as a SHA-256
hash plus its last four characters. Every ledger operation is idempotent by key and runs
under a row lock on the card; redemption attempts are throttled per card and per client
(API key, user or customer; the IP only when nothing else is known).
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from growth.errors import (
    CurrencyMismatch,
    GiftCardDisabled,
    GiftCardExpired,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidAmount,
    TooManyAttempts,
    UnknownGiftCard,
)
from growth.models import GiftCard, GiftCardAttempt, GiftCardTransaction
from growth.notifications import email_on_commit
from growth.webhook_events import GIFT_CARD_LEDGER_ENTRY
from messaging.audit import record_audit
from messaging.errors import InvalidInput, MailroomError, NotAllowed
from messaging.models import Contact
from messaging.money import format_money
from messaging.webhooks.emit import emit

logger = logging.getLogger(__name__)

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols, none that look alike
CODE_LENGTH = 16
MAX_AMOUNT = Decimal("10000")
MAX_BATCH = 1000
Kind = GiftCardTransaction.Kind
# Errors that mean "this code is not a usable card": what someone guessing codes sees.
BAD_CODE_ERRORS = frozenset({UnknownGiftCard.code, GiftCardExpired.code, GiftCardDisabled.code})


def _announce(entry: GiftCardTransaction) -> None:
    """The ledger entry to webhook endpoints (after commit): amounts and ids, never the code."""
    emit(
        GIFT_CARD_LEDGER_ENTRY,
        {
            "entry_id": entry.pk,
            "card_id": entry.card_id,
            "kind": entry.kind,
            "amount": str(entry.amount),
            "balance_after": str(entry.balance_after),
            "currency": entry.card.currency,
            "order_reference": entry.order_reference,
        },
    )


def generate_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def hash_code(code: str) -> str:
    # A plain hash is enough for 80 random bits, and unlike a keyed hash it does not orphan
    # every card when the secret key is rotated.
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def _amount(value, *, field: str = "amount") -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidAmount(_("The amount must be a number."), fields={field: [_("Must be a number.")]}) from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount(_("The amount must be above zero."), fields={field: [_("Must be above zero.")]})
    if amount > MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
        raise InvalidAmount(
            _("The amount must be at most %(max)s with two decimals.") % {"max": MAX_AMOUNT}, fields={field: [_("Out of range.")]}
        )
    return amount.quantize(Decimal("0.01"))


def _currency(value: str) -> str:
    currency = (value or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise InvalidInput(_("A currency is three letters, e.g. EUR."), fields={"currency": [_("Three letters.")]})
    return currency


def _key(value: str | None) -> str:
    key = (value or "").strip()
    if not key or len(key) > 200:
        raise InvalidInput(_("An idempotency key (1 to 200 characters) is required."), fields={"idempotency_key": [_("Required.")]})
    return key


def money(amount: Decimal, currency: str) -> str:
    """An amount in error messages, in the active language's format ("€12.50", "12,50 €")."""
    return format_money(amount, currency)


# --- issuing -------------------------------------------------------------------------------


@dataclass
class IssuedGiftCard:
    card: GiftCard
    code: str | None  # the only time the code exists in clear; None when replayed by key


def _create_card(
    *,
    actor,
    amount: Decimal,
    currency: str,
    expires_at: datetime | None,
    recipient: Contact | None,
    sender_name: str,
    message: str,
    batch: str,
    issue_key: str | None,
) -> IssuedGiftCard:
    code = generate_code()
    card = GiftCard.objects.create(
        code_hash=hash_code(code),
        last4=normalise_code(code)[-4:],
        initial_amount=amount,
        balance=amount,
        currency=currency,
        expires_at=expires_at,
        recipient=recipient,
        sender_name=sender_name[:120],
        message=message[:500],
        batch=batch[:64],
        issue_key=issue_key,
        issued_by=actor if actor is not None and actor.is_authenticated else None,
    )
    entry = GiftCardTransaction.objects.create(
        card=card,
        kind=Kind.PURCHASE,
        amount=amount,
        balance_after=amount,
        idempotency_key=f"giftcard:{card.pk}:purchase",
        actor=card.issued_by,
    )
    _announce(entry)
    return IssuedGiftCard(card=card, code=code)


def issue_gift_card(
    *,
    actor: AbstractBaseUser | None,
    amount,
    currency: str = "EUR",
    expires_at: datetime | None = None,
    recipient: Contact | None = None,
    sender_name: str = "",
    message: str = "",
    idempotency_key: str | None = None,
    send_email: bool = True,
) -> IssuedGiftCard:
    """Issue one card. With a recipient, the delivery email (the catalog's
    `gift-card-delivered`) is queued after commit. A replayed key returns the card without
    its code: a code is shown once."""
    amount, currency = _amount(amount), _currency(currency)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(_("The expiry date must be in the future."), fields={"expires_at": [_("Must be in the future.")]})
    key = (idempotency_key or "").strip() or None
    if key and (existing := GiftCard.objects.filter(issue_key=key).first()):
        return IssuedGiftCard(card=existing, code=None)
    try:
        with transaction.atomic():
            issued = _create_card(
                actor=actor,
                amount=amount,
                currency=currency,
                expires_at=expires_at,
                recipient=recipient,
                sender_name=sender_name,
                message=message,
                batch="",
                issue_key=key,
            )
            record_audit(actor=actor, verb="gift_card_issued", target=issued.card, changes={"amount": str(amount), "currency": currency})
            if recipient is not None and send_email:
                email_on_commit(
                    key="gift-card-delivered",
                    contact_id=recipient.pk,
                    context={
                        "gift_card": {
                            "amount": f"{amount:.2f}",
                            "currency": currency,
                            "last4": issued.card.last4,
                            "message": message,
                            "sender_name": sender_name,
                        }
                    },
                    dedup_key=f"gift-card-delivered:{issued.card.pk}",
                    secrets={"gift_card.code": issued.code},  # sealed: staff reading the outbox cannot redeem it
                )
    except IntegrityError:
        if key and (existing := GiftCard.objects.filter(issue_key=key).first()):
            return IssuedGiftCard(card=existing, code=None)
        raise
    return issued


def _replayed_batch(key: str | None) -> list[IssuedGiftCard] | None:
    if not key:
        return None
    cards = list(GiftCard.objects.filter(issue_key__startswith=f"{key}:").order_by("pk"))
    return [IssuedGiftCard(card=card, code=None) for card in cards] or None


def issue_gift_cards(
    *,
    actor: AbstractBaseUser | None,
    count: int,
    amount,
    currency: str = "EUR",
    expires_at: datetime | None = None,
    batch: str = "",
    idempotency_key: str | None = None,
) -> list[IssuedGiftCard]:
    """Issue a batch of cards in one transaction (all or none); the codes are returned once.
    A replayed key (a form submitted twice) returns the same cards without their codes."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        raise InvalidInput(_("Issue between 1 and %(max)s cards at once.") % {"max": MAX_BATCH}, fields={"count": [_("Out of range.")]})
    amount, currency = _amount(amount), _currency(currency)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(_("The expiry date must be in the future."), fields={"expires_at": [_("Must be in the future.")]})
    key = (idempotency_key or "").strip()[:150] or None
    if replay := _replayed_batch(key):
        return replay
    try:
        return _issue_batch(actor=actor, count=count, amount=amount, currency=currency, expires_at=expires_at, batch=batch, key=key)
    except IntegrityError:
        if replay := _replayed_batch(key):  # the same form submitted twice at once
            return replay
        raise


@transaction.atomic
def _issue_batch(
    *, actor, count: int, amount: Decimal, currency: str, expires_at: datetime | None, batch: str, key: str | None
) -> list[IssuedGiftCard]:
    batch = (batch or "").strip() or timezone.now().strftime("batch-%Y%m%d-%H%M%S")
    issued = [
        _create_card(
            actor=actor,
            amount=amount,
            currency=currency,
            expires_at=expires_at,
            recipient=None,
            sender_name="",
            message="",
            batch=batch,
            issue_key=f"{key}:{n}" if key else None,
        )
        for n in range(count)
    ]
    record_audit(
        actor=actor,
        verb="gift_cards_issued",
        target_type="growth.giftcard",
        changes={"batch": batch, "count": count, "amount": str(amount)},
    )
    return issued


# --- throttling ------------------------------------------------------------------------------


def _since(minutes: float) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


CUSTOMER_SEPARATOR = ":customer:"


def attempt_client(*, client: str = "", customer: str = "", actor=None, ip_address: str | None = None) -> str:
    """Who a redemption attempt is counted against: the API key (`client`, e.g. "key:12"),
    else the signed-in user, else the IP address; narrowed to one of its customers when
    the caller names one (a shop's server redeems for all its customers from one IP)."""
    who = client or (f"user:{actor.pk}" if actor is not None and actor.is_authenticated else f"ip:{ip_address}" if ip_address else "")
    if who and customer:
        who += CUSTOMER_SEPARATOR + hashlib.sha256(customer.encode()).hexdigest()[:24]
    return who


def _check_client(who: str) -> None:
    if not who:
        return
    attempts = GiftCardAttempt.objects.filter(client=who)
    bad = attempts.filter(created_at__gte=_since(settings.MAILROOM_GIFT_CARD_LOCKOUT_MINUTES), error_code__in=BAD_CODE_ERRORS).count()
    if bad >= settings.MAILROOM_GIFT_CARD_MAX_BAD_CODES:
        raise TooManyAttempts(
            _("Too many invalid gift-card codes. Try again in %(minutes)s minutes.")
            % {"minutes": settings.MAILROOM_GIFT_CARD_LOCKOUT_MINUTES}
        )
    if attempts.filter(created_at__gte=_since(1)).count() >= settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CLIENT:
        raise TooManyAttempts(_("Too many gift-card attempts. Try again in a minute."))
    base = who.split(CUSTOMER_SEPARATOR)[0]
    if base != who:
        # The caller names the customer, so it could name a new one for every guess: its
        # wrong codes across all its customers are capped per minute too (right ones are not).
        whole = GiftCardAttempt.objects.filter(Q(client=base) | Q(client__startswith=base + CUSTOMER_SEPARATOR))
        wrong = whole.filter(created_at__gte=_since(1), error_code__in=BAD_CODE_ERRORS).count()
        if wrong >= settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CLIENT:
            raise TooManyAttempts(_("Too many invalid gift-card codes. Try again in a minute."))


def _check_card(card_id: int) -> None:
    attempts = GiftCardAttempt.objects.filter(card_id=card_id)
    refused = attempts.filter(created_at__gte=_since(settings.MAILROOM_GIFT_CARD_LOCKOUT_MINUTES), succeeded=False).count()
    if refused >= settings.MAILROOM_GIFT_CARD_MAX_BAD_CODES:
        raise TooManyAttempts(
            _("Too many refused attempts on this gift card. Try again in %(minutes)s minutes.")
            % {"minutes": settings.MAILROOM_GIFT_CARD_LOCKOUT_MINUTES}
        )
    if attempts.filter(created_at__gte=_since(1)).count() >= settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CARD:
        raise TooManyAttempts(_("Too many attempts on this gift card. Try again in a minute."))


def _record_attempt(*, who: str, ip_address: str | None, card_id: int | None, error_code: str = "") -> None:
    # Written in its own transaction, outside the redemption's, so a refused redemption
    # still counts towards the throttle.
    GiftCardAttempt.objects.create(
        client=who[:100], ip_address=ip_address or None, card_id=card_id, succeeded=not error_code, error_code=error_code[:40]
    )


# --- ledger operations --------------------------------------------------------------------------


def _locked(card_id: int) -> GiftCard:
    return GiftCard.objects.select_for_update().get(pk=card_id)


def _replayed(key: str, *, card: GiftCard, kind: str, amount: Decimal) -> GiftCardTransaction | None:
    existing = GiftCardTransaction.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.card_id != card.pk or existing.kind != kind or existing.amount != amount:
        raise IdempotencyConflict(_("This idempotency key was already used for a different request."))
    return existing


def _usable(card: GiftCard) -> None:
    if card.disabled_at is not None:
        raise GiftCardDisabled(_("This gift card is disabled."))
    if card.expires_at is not None and card.expires_at <= timezone.now():
        raise GiftCardExpired(_("This gift card expired on %(date)s.") % {"date": f"{timezone.localtime(card.expires_at):%Y-%m-%d}"})


def _same_currency(card: GiftCard, currency: str | None) -> None:
    if currency and currency != card.currency:
        raise CurrencyMismatch(_("This gift card is in %(card)s, not %(asked)s.") % {"card": card.currency, "asked": currency})


def _append(*, card: GiftCard, kind: str, amount: Decimal, key: str, actor, order_reference: str = "") -> GiftCardTransaction:
    new_balance = card.balance + amount
    if new_balance < 0:
        raise InsufficientBalance(
            _("Only %(balance)s left on this gift card; %(amount)s was asked for.")
            % {"balance": money(card.balance, card.currency), "amount": money(-amount, card.currency)}
        )
    entry = GiftCardTransaction.objects.create(
        card=card,
        kind=kind,
        amount=amount,
        balance_after=new_balance,
        idempotency_key=key,
        order_reference=(order_reference or "")[:128],
        actor=actor if actor is not None and actor.is_authenticated else None,
    )
    card.balance = new_balance
    card.save(update_fields=["balance"])
    _announce(entry)
    return entry


@transaction.atomic
def _redeem(*, card_id: int, amount: Decimal, currency: str | None, key: str, actor, order_reference: str) -> GiftCardTransaction:
    card = _locked(card_id)
    if replay := _replayed(key, card=card, kind=Kind.REDEMPTION, amount=-amount):
        return replay
    _usable(card)
    _same_currency(card, currency)
    entry = _append(card=card, kind=Kind.REDEMPTION, amount=-amount, key=key, actor=actor, order_reference=order_reference)
    record_audit(actor=actor, verb="gift_card_redeemed", target=card, changes={"amount": str(-amount), "key": key})
    return entry


def redeem_gift_card(
    *,
    code: str,
    amount,
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
    currency: str | None = None,
    ip_address: str | None = None,
    order_reference: str = "",
    client: str = "",
    customer: str = "",
) -> GiftCardTransaction:
    """Spend part or all of a card's balance. The same key again returns the first
    redemption; the balance never goes below zero, however many requests race for it.

    Guessing is locked out per card (refused attempts on it) and per client (the API key
    `client`, else the user, else the IP; per `customer` when the caller names one), never
    per IP alone: one shop's server must not lock all its customers out."""
    amount, key = _amount(amount), _key(idempotency_key)
    currency = _currency(currency) if currency else None
    who = attempt_client(client=client, customer=customer, actor=actor, ip_address=ip_address)
    _check_client(who)
    card_id = GiftCard.objects.filter(code_hash=hash_code(code)).values_list("pk", flat=True).first() if normalise_code(code) else None
    if card_id is None:
        _record_attempt(who=who, ip_address=ip_address, card_id=None, error_code=UnknownGiftCard.code)
        raise UnknownGiftCard(_("This gift-card code is not valid."))
    _check_card(card_id)
    try:
        entry = _redeem(card_id=card_id, amount=amount, currency=currency, key=key, actor=actor, order_reference=order_reference)
    except MailroomError as error:
        _record_attempt(who=who, ip_address=ip_address, card_id=card_id, error_code=error.code)
        raise
    _record_attempt(who=who, ip_address=ip_address, card_id=card_id)
    return entry


@transaction.atomic
def refund_to_gift_card(
    *,
    card: GiftCard,
    amount,
    idempotency_key: str,
    actor: AbstractBaseUser | None = None,
    currency: str | None = None,
    order_reference: str = "",
) -> GiftCardTransaction:
    """Put back money spent from a card (an order paid by gift card was refunded). Never
    more than was redeemed and not yet refunded. A currency, when given, must be the card's."""
    amount, key = _amount(amount), _key(idempotency_key)
    currency = _currency(currency) if currency else None
    card = _locked(card.pk)
    if replay := _replayed(key, card=card, kind=Kind.REFUND, amount=amount):
        return replay
    _usable(card)
    _same_currency(card, currency)
    totals = dict(card.transactions.values_list("kind").annotate(total=Sum("amount")).order_by())
    refundable = -totals.get(Kind.REDEMPTION, Decimal(0)) - totals.get(Kind.REFUND, Decimal(0))
    if amount > refundable:
        raise InvalidAmount(
            _("At most %(amount)s can be refunded to this card.") % {"amount": money(refundable, card.currency)},
            fields={"amount": [_("Out of range.")]},
        )
    entry = _append(card=card, kind=Kind.REFUND, amount=amount, key=key, actor=actor, order_reference=order_reference)
    record_audit(actor=actor, verb="gift_card_refunded", target=card, changes={"amount": str(amount), "key": key})
    return entry


@transaction.atomic
def disable_gift_card(*, card: GiftCard, reason: str, actor: AbstractBaseUser) -> GiftCard:
    """Stop a card from being used. Cards are never deleted; their ledger stays."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Say why the card is disabled."), fields={"reason": [_("This field is required.")]})
    card = _locked(card.pk)
    if card.disabled_at is not None:
        raise NotAllowed(_("This gift card is already disabled."))
    card.disabled_at, card.disabled_reason = timezone.now(), reason[:300]
    card.save(update_fields=["disabled_at", "disabled_reason"])
    record_audit(actor=actor, verb="gift_card_disabled", target=card, changes={"reason": card.disabled_reason})
    return card


def expire_gift_cards(*, now: datetime | None = None) -> int:
    """Zero the balance of every expired card with one `expiry` row each; returns how many."""
    now = now or timezone.now()
    done = 0
    for card_id in GiftCard.objects.filter(expires_at__lte=now, balance__gt=0).values_list("pk", flat=True):
        with transaction.atomic():
            card = _locked(card_id)
            if card.balance <= 0:
                continue
            _append(card=card, kind=Kind.EXPIRY, amount=-card.balance, key=f"giftcard:{card.pk}:expiry", actor=None)
            record_audit(actor=None, verb="gift_card_expired", target=card)
            done += 1
    # Attempts only matter for the throttle windows.
    GiftCardAttempt.objects.filter(created_at__lt=now - timedelta(days=1)).delete()
    return done
