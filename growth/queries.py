"""Read-side selectors for the console, the report and (next) the API: plain data out."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from growth.loyalty import active_program, points_value
from growth.models import GiftCard, GiftCardTransaction, LoyaltyAccount, LoyaltyTransaction, Referral, ReferralCode, ReferralReward
from growth.referrals import open_program, referral_url
from messaging.models import Contact


def referral_code_for(*, contact: Contact) -> ReferralCode | None:
    program = open_program()
    return ReferralCode.objects.filter(program=program, contact=contact).first() if program else None


def referral_stats(*, contact: Contact) -> dict[str, Any]:
    """ "My code" and what it brought: for the contact's own page or the API."""
    code = referral_code_for(contact=contact)
    by_status = dict(Referral.objects.filter(referrer=contact).values_list("status").annotate(n=Count("id")).order_by())
    rewards = ReferralReward.objects.filter(contact=contact, role=ReferralReward.Role.REFERRER, reversed_at__isnull=True)
    return {
        "code": code.code if code else None,
        "url": referral_url(code.code) if code else None,
        "referrals": {status: by_status.get(status, 0) for status in Referral.Status.values},
        "total": sum(by_status.values()),
        "rewards": [{"kind": r.kind, "value": str(r.value), "currency": r.currency} for r in rewards.order_by("-created_at")[:50]],
    }


def loyalty_account_for(*, contact: Contact) -> LoyaltyAccount | None:
    program = active_program()
    if program is None:
        return None
    return LoyaltyAccount.objects.select_related("program", "tier").filter(program=program, contact=contact).first()


def loyalty_summary(*, contact: Contact) -> dict[str, Any] | None:
    account = loyalty_account_for(contact=contact)
    if account is None:
        return None
    next_tier = account.program.tiers.filter(threshold__gt=account.lifetime_points).order_by("threshold").first()
    return {
        "account_id": account.pk,
        "program": account.program.name,
        "balance": account.balance,
        "value": str(points_value(account.program, account.balance)),
        "currency": account.program.currency,
        "lifetime_points": account.lifetime_points,
        "tier": account.tier.name if account.tier else None,
        "next_tier": {"name": next_tier.name, "points_needed": next_tier.threshold - account.lifetime_points} if next_tier else None,
    }


def loyalty_ledger(*, account: LoyaltyAccount) -> QuerySet[LoyaltyTransaction]:
    return account.transactions.select_related("actor").order_by("-created_at", "-id")


def gift_card_ledger_for(*, contact: Contact) -> QuerySet[GiftCardTransaction]:
    """Every ledger row of the gift cards sent to this contact, newest first."""
    return GiftCardTransaction.objects.filter(card__recipient=contact).select_related("card", "actor").order_by("-created_at", "-id")


def gift_cards_for(*, contact: Contact) -> QuerySet[GiftCard]:
    return GiftCard.objects.filter(recipient=contact).order_by("-created_at")


def contact_growth_summary(*, contact: Contact) -> dict[str, Any]:
    """Everything growth knows about one contact, for the console page."""
    account = loyalty_account_for(contact=contact)
    return {
        "contact": contact,
        "loyalty": loyalty_summary(contact=contact),
        "ledger": loyalty_ledger(account=account) if account else LoyaltyTransaction.objects.none(),
        "gift_card_ledger": gift_card_ledger_for(contact=contact),
        "referral": referral_stats(contact=contact),
        "referrals_made": list(Referral.objects.filter(referrer=contact).select_related("friend")[:20]),
        "referred_by": Referral.objects.filter(friend=contact).select_related("referrer").first(),
        "gift_cards": list(gift_cards_for(contact=contact)[:20]),
    }


# --- the growth report ---------------------------------------------------------------------------


def _days(days: int) -> list[date]:
    first = timezone.localdate() - timedelta(days=days - 1)
    return [first + timedelta(days=n) for n in range(days)]


def points_per_day(*, days: int = 30) -> dict[str, list]:
    """Points issued (earned + positive adjustments) and spent (redeemed) per day."""
    axis = _days(days)
    rows = (
        LoyaltyTransaction.objects.filter(created_at__date__gte=axis[0])
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            issued=Sum("points", filter=Q(points__gt=0, kind__in=["earned", "adjusted"]), default=0),
            redeemed=Sum("points", filter=Q(kind="redeemed"), default=0),
        )
        .order_by("day")
    )
    found = {row["day"]: row for row in rows}
    return {
        "days": [d.isoformat() for d in axis],
        "issued": [found.get(d, {}).get("issued", 0) for d in axis],
        "redeemed": [-found.get(d, {}).get("redeemed", 0) for d in axis],
    }


def referrals_by_status() -> dict[str, int]:
    counts = dict(Referral.objects.values_list("status").annotate(n=Count("id")).order_by())
    return {status: counts.get(status, 0) for status in Referral.Status.values}


def gift_card_liability() -> dict[str, Decimal]:
    """What the business still owes on cards, per currency (live, usable cards only)."""
    now = timezone.now()
    usable = GiftCard.objects.filter(disabled_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return dict(usable.values_list("currency").annotate(total=Sum("balance")).order_by("currency"))


def gift_card_liability_per_day(*, days: int = 30) -> dict[str, Any]:
    """Outstanding balance at the end of each day, per currency, from the ledger."""
    axis = _days(days)
    opening = dict(
        GiftCardTransaction.objects.filter(created_at__date__lt=axis[0])
        .values_list("card__currency")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    moves = (
        GiftCardTransaction.objects.filter(created_at__date__gte=axis[0])
        .annotate(day=TruncDate("created_at"))
        .values_list("card__currency", "day")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    per_day: dict[str, dict[date, Decimal]] = {}
    for currency, day, total in moves:
        per_day.setdefault(currency, {})[day] = total
    series = {}
    for currency in sorted(set(opening) | set(per_day)):
        running, values = opening.get(currency, Decimal(0)), []
        for day in axis:
            running += per_day.get(currency, {}).get(day, Decimal(0))
            values.append(float(running))
        series[currency] = values
    return {"days": [d.isoformat() for d in axis], "series": series}


def growth_figures() -> dict[str, Any]:
    totals = LoyaltyAccount.objects.aggregate(points=Sum("balance", default=0), accounts=Count("id"))
    return {
        "points_outstanding": totals["points"],
        "accounts": totals["accounts"],
        "referrals": Referral.objects.count(),
        "rewarded": Referral.objects.filter(status=Referral.Status.REWARDED).count(),
        "liability": gift_card_liability(),
        "cards_active": GiftCard.objects.filter(disabled_at__isnull=True, balance__gt=0).count(),
    }
