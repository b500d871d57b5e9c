"""Loyalty actions: earn on paid orders, reverse on refunds, redeem, adjust, expire.

Every change locks the account row (`select_for_update`, a real row lock on PostgreSQL;
SQLite's IMMEDIATE transactions serialise writers), re-reads the balance, appends one
ledger row and moves the balance in the same transaction. A balance below zero is refused
here, and the database's check constraints refuse it again.
"""

import calendar
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from growth.errors import IdempotencyConflict, InsufficientBalance, InvalidAmount, NoLoyaltyProgram
from growth.models import LoyaltyAccount, LoyaltyProgram, LoyaltyTier, LoyaltyTransaction
from growth.notifications import email_on_commit
from growth.webhook_events import LOYALTY_LEDGER_ENTRY
from messaging.audit import record_audit
from messaging.errors import InvalidInput
from messaging.models import Contact
from messaging.webhooks.emit import emit

logger = logging.getLogger(__name__)

Kind = LoyaltyTransaction.Kind
CREDIT_KINDS = (Kind.EARNED,)  # credits that expire


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def active_program() -> LoyaltyProgram | None:
    return LoyaltyProgram.objects.filter(is_active=True).order_by("pk").first()


def tier_for(program: LoyaltyProgram, lifetime_points: int) -> LoyaltyTier | None:
    return program.tiers.filter(threshold__lte=max(lifetime_points, 0)).order_by("-threshold").first()


def points_value(program: LoyaltyProgram, points: int) -> Decimal:
    """What `points` are worth in the program's currency."""
    return (Decimal(points) / Decimal(program.redemption_rate)).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)


def get_or_create_account(*, contact: Contact, program: LoyaltyProgram | None = None) -> LoyaltyAccount:
    program = program or active_program()
    if program is None:
        raise NoLoyaltyProgram(_("There is no active loyalty program."))
    account = LoyaltyAccount.objects.filter(program=program, contact=contact).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return LoyaltyAccount.objects.create(program=program, contact=contact, tier=tier_for(program, 0))
    except IntegrityError:  # created by a concurrent request
        return LoyaltyAccount.objects.get(program=program, contact=contact)


def _locked(account_id: int) -> LoyaltyAccount:
    return LoyaltyAccount.objects.select_for_update().select_related("program").get(pk=account_id)


def _append(
    *,
    account: LoyaltyAccount,
    kind: str,
    points: int,
    actor: AbstractBaseUser | None,
    order_reference: str = "",
    idempotency_key: str | None = None,
    reason: str = "",
    expires_at: datetime | None = None,
) -> LoyaltyTransaction:
    """Append one row to a locked account's ledger and move its balance with it."""
    new_balance = account.balance + points
    if new_balance < 0:
        raise InsufficientBalance(
            _("Not enough points: the balance is %(balance)s, %(points)s were asked for.") % {"balance": account.balance, "points": -points}
        )
    entry = LoyaltyTransaction.objects.create(
        account=account,
        kind=kind,
        points=points,
        balance_after=new_balance,
        order_reference=order_reference,
        idempotency_key=idempotency_key or None,
        reason=reason,
        expires_at=expires_at,
        actor=actor if actor is not None and actor.is_authenticated else None,
    )
    account.balance = new_balance
    emit(
        LOYALTY_LEDGER_ENTRY,
        {
            "entry_id": entry.pk,
            "account_id": account.pk,
            "contact_id": account.contact_id,
            "kind": kind,
            "points": points,
            "balance_after": new_balance,
            "order_reference": order_reference,
        },
    )
    if kind == Kind.EARNED or (kind == Kind.REVERSED and order_reference):
        account.lifetime_points = max(0, account.lifetime_points + points)
        account.tier = tier_for(account.program, account.lifetime_points)
    account.save(update_fields=["balance", "lifetime_points", "tier", "updated_at"])
    return entry


def _order_points(account: LoyaltyAccount, amount: Decimal) -> int:
    multiplier = account.tier.multiplier if account.tier else Decimal(1)
    return int((amount * account.program.points_per_unit * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def _money(value) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidAmount(_("The amount must be a number."), fields={"amount": [_("Must be a number.")]}) from None
    if not amount.is_finite() or amount < 0:
        raise InvalidAmount(_("The amount cannot be negative."), fields={"amount": [_("Cannot be negative.")]})
    return amount


@transaction.atomic
def earn_points_for_order(
    *, contact: Contact, order_reference: str, amount, actor: AbstractBaseUser | None = None
) -> LoyaltyTransaction | None:
    """Credit the points of one paid order, once: replays return the first credit."""
    order_reference = (order_reference or "").strip()
    if not order_reference:
        raise InvalidInput(_("An order reference is required."), fields={"order_reference": [_("This field is required.")]})
    amount = _money(amount)
    program = active_program()
    if program is None:
        return None
    account = _locked(get_or_create_account(contact=contact, program=program).pk)
    existing = account.transactions.filter(kind__in=(Kind.EARNED, Kind.REVERSED), order_reference=order_reference).order_by("pk").first()
    if existing is not None:  # already credited, or refunded before the payment event arrived
        return existing if existing.kind == Kind.EARNED else None
    points = _order_points(account, amount)
    if points <= 0:
        return None
    expires_at = add_months(timezone.now(), program.expiry_months) if program.expiry_months else None
    entry = _append(account=account, kind=Kind.EARNED, points=points, actor=actor, order_reference=order_reference, expires_at=expires_at)
    record_audit(actor=actor, verb="points_earned", target=account, changes={"points": points, "order": order_reference})
    return entry


@transaction.atomic
def reverse_points_for_order(*, contact: Contact, order_reference: str, actor: AbstractBaseUser | None = None) -> list[LoyaltyTransaction]:
    """Take back what a refunded order earned (once). Points already spent cannot be taken
    below zero: the reversal is capped at the balance and the shortfall is noted."""
    reversals = []
    earned = LoyaltyTransaction.objects.filter(account__contact=contact, kind=Kind.EARNED, order_reference=order_reference)
    for account_id, points in earned.values_list("account_id", "points"):
        account = _locked(account_id)
        existing = account.transactions.filter(kind=Kind.REVERSED, order_reference=order_reference).first()
        if existing is not None:
            reversals.append(existing)
            continue
        taken = min(points, account.balance)
        if taken <= 0:
            logger.warning("order %s refunded: its %s points were already spent on account %s", order_reference, points, account_id)
            continue
        reason = "" if taken == points else _("%(n)s points were already spent") % {"n": points - taken}
        entry = _append(account=account, kind=Kind.REVERSED, points=-taken, actor=actor, order_reference=order_reference, reason=reason)
        record_audit(actor=actor, verb="points_reversed", target=account, changes={"points": -taken, "order": order_reference})
        reversals.append(entry)
    return reversals


def _positive_points(points) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidAmount(_("Points must be a whole number above zero."), fields={"points": [_("Must be a whole number above zero.")]})
    return points


def _require_key(key: str | None) -> str:
    key = (key or "").strip()
    if not key or len(key) > 200:
        raise InvalidInput(_("An idempotency key (1 to 200 characters) is required."), fields={"idempotency_key": [_("Required.")]})
    return key


@transaction.atomic
def redeem_points(
    *, contact: Contact, points: int, idempotency_key: str, actor: AbstractBaseUser | None = None, order_reference: str = ""
) -> LoyaltyTransaction:
    """Spend points. The same key again returns the first redemption; the balance never
    goes below zero, however many requests race for it."""
    points = _positive_points(points)
    key = _require_key(idempotency_key)
    program = active_program()
    account_id = LoyaltyAccount.objects.filter(program=program, contact=contact).values_list("pk", flat=True).first() if program else None
    if account_id is None:
        raise InsufficientBalance(
            _("Not enough points: the balance is %(balance)s, %(points)s were asked for.") % {"balance": 0, "points": points}
        )
    account = _locked(account_id)
    existing = LoyaltyTransaction.objects.filter(idempotency_key=key).first()
    if existing is not None:
        if existing.account_id != account.pk or existing.points != -points or existing.kind != Kind.REDEEMED:
            raise IdempotencyConflict(_("This idempotency key was already used for a different request."))
        return existing
    entry = _append(account=account, kind=Kind.REDEEMED, points=-points, actor=actor, idempotency_key=key, order_reference=order_reference)
    record_audit(actor=actor, verb="points_redeemed", target=account, changes={"points": -points, "key": key})
    return entry


@transaction.atomic
def adjust_points(*, account: LoyaltyAccount, points: int, reason: str, actor: AbstractBaseUser) -> LoyaltyTransaction:
    """A staff correction, up or down. A reason is required and the change is audited."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Say why the points are adjusted."), fields={"reason": [_("This field is required.")]})
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise InvalidAmount(_("Give a whole number of points other than zero."), fields={"points": [_("Must not be zero.")]})
    account = _locked(account.pk)
    before = account.balance
    entry = _append(account=account, kind=Kind.ADJUSTED, points=points, actor=actor, reason=reason[:300])
    record_audit(
        actor=actor,
        verb="points_adjusted",
        target=account,
        changes={"balance": {"before": before, "after": account.balance}, "points": points, "reason": reason[:300]},
    )
    return entry


# --- expiry ------------------------------------------------------------------------------
# Points are spent oldest first: what is due to expire is what was credited with an expiry
# up to that moment, minus everything debited so far (redeemed, reversed, expired, adjusted down).


def _due_expr(moment: datetime):
    credited = Sum("transactions__points", filter=Q(transactions__kind__in=CREDIT_KINDS, transactions__expires_at__lte=moment), default=0)
    debited = Sum("transactions__points", filter=Q(transactions__points__lt=0), default=0)
    return credited + debited  # debited is negative


def accounts_with_points_due(*, moment: datetime):
    return LoyaltyAccount.objects.filter(balance__gt=0).annotate(due=_due_expr(moment)).filter(due__gt=0)


def expire_points(*, now: datetime | None = None) -> int:
    """Write one `expired` row per account whose points ran out; returns the points expired."""
    now = now or timezone.now()
    total = 0
    for account_id in accounts_with_points_due(moment=now).values_list("pk", flat=True):
        with transaction.atomic():
            account = _locked(account_id)
            due = accounts_with_points_due(moment=now).filter(pk=account_id).values_list("due", flat=True).first() or 0
            points = min(due, account.balance)
            if points <= 0:
                continue
            _append(account=account, kind=Kind.EXPIRED, points=-points, actor=None, reason=_("Points older than the program allows"))
            record_audit(actor=None, verb="points_expired", target=account, changes={"points": -points})
            total += points
    return total


@dataclass
class ExpiryWarning:
    account_id: int
    points: int
    expires_on: datetime


def warn_expiring_points(*, now: datetime | None = None) -> int:
    """Email each contact whose points expire within the program's warning period, once
    per expiry date (the outbox dedup key makes a second run a no-op)."""
    now = now or timezone.now()
    sent = 0
    for program in LoyaltyProgram.objects.filter(is_active=True, expiry_months__gt=0):
        horizon = now + timedelta(days=program.warning_days)
        due = accounts_with_points_due(moment=horizon).filter(program=program).select_related("contact")
        for account in due:
            first = (
                account.transactions.filter(kind__in=CREDIT_KINDS, expires_at__gt=now, expires_at__lte=horizon)
                .order_by("expires_at")
                .values_list("expires_at", flat=True)
                .first()
            )
            if first is None:
                continue
            points = min(account.due, account.balance)
            context = {
                "loyalty": {"expiring_points": points, "expires_on": formats.date_format(first, "DATE_FORMAT"), "balance": account.balance}
            }
            with transaction.atomic():
                email_on_commit(
                    key="loyalty-points-expiring",
                    contact_id=account.contact_id,
                    context=context,
                    dedup_key=f"loyalty-expiring:{account.pk}:{first:%Y-%m-%d}",
                )
            sent += 1
    return sent


@transaction.atomic
def credit_points(
    *, contact: Contact, points: int, reference: str, reason: str, actor: AbstractBaseUser | None = None
) -> LoyaltyTransaction | None:
    """Credit a fixed number of points for something other than an order (a referral
    reward), once per reference. None when no loyalty program is running."""
    points = _positive_points(points)
    program = active_program()
    if program is None:
        return None
    account = _locked(get_or_create_account(contact=contact, program=program).pk)
    existing = account.transactions.filter(kind__in=(Kind.EARNED, Kind.REVERSED), order_reference=reference).order_by("pk").first()
    if existing is not None:
        return existing if existing.kind == Kind.EARNED else None
    expires_at = add_months(timezone.now(), program.expiry_months) if program.expiry_months else None
    entry = _append(
        account=account, kind=Kind.EARNED, points=points, actor=actor, order_reference=reference, reason=reason, expires_at=expires_at
    )
    record_audit(actor=actor, verb="points_earned", target=account, changes={"points": points, "reference": reference})
    return entry
