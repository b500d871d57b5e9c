"""Growth's entries on the contact page's timeline (messaging.timeline): the loyalty
ledger, the gift cards she received and her referrals. Registered from GrowthConfig.ready().

A gift card appears as the console shows it everywhere: its last 4 characters (the code
itself is stored hashed and never shown)."""

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from growth import policies
from growth.models import GiftCardTransaction, LoyaltyTransaction, Referral
from messaging.models import Contact
from messaging.timeline import Entry, admin_link, compact, register_timeline_source

REFERRAL_VARIANTS = {"qualified": "info", "rewarded": "success", "rejected": "danger", "reversed": "danger", "expired": "warning"}


def loyalty_entries(contact: Contact, limit: int) -> list[Entry]:
    rows = (
        LoyaltyTransaction.objects.filter(account__contact=contact)
        .select_related("account__program")
        .only("pk", "kind", "points", "balance_after", "order_reference", "reason", "created_at", "account_id", "account__program__name")
        .order_by("-created_at", "-id")[:limit]
    )
    entries = []
    for row in rows:
        details = [_("balance %(points)s") % {"points": row.balance_after}, row.account.program.name]
        if row.order_reference:
            details.append(_("order %(id)s") % {"id": row.order_reference})
        if row.reason and not contact.erased_at:  # staff-written, and the ledger cannot be scrubbed
            details.append(compact(row.reason))
        entries.append(
            Entry(
                when=row.created_at,
                kind="loyalty",
                title=_("%(kind)s %(points)+d points") % {"kind": row.get_kind_display(), "points": row.points},
                detail=" · ".join(details),
                link=admin_link("growth_loyaltyaccount", row.account_id),
                sort_id=row.pk,
            )
        )
    return entries


def gift_card_entries(contact: Contact, limit: int) -> list[Entry]:
    rows = (
        GiftCardTransaction.objects.filter(card__recipient=contact)
        .select_related("card")
        .only("pk", "kind", "amount", "balance_after", "order_reference", "created_at", "card__last4", "card__currency")
        .order_by("-created_at", "-id")[:limit]
    )
    entries = []
    for row in rows:
        details = [_("balance %(amount)s %(currency)s") % {"amount": row.balance_after, "currency": row.card.currency}]
        if row.order_reference:
            details.append(_("order %(id)s") % {"id": row.order_reference})
        entries.append(
            Entry(
                when=row.created_at,
                kind="gift_card",
                title=_("Gift card %(card)s: %(kind)s %(amount)s %(currency)s")
                % {"card": str(row.card), "kind": row.get_kind_display(), "amount": f"{row.amount:+}", "currency": row.card.currency},
                detail=" · ".join(details),
                link=admin_link("growth_giftcard", row.card_id),
                sort_id=row.pk,
            )
        )
    return entries


def referral_entries(contact: Contact, limit: int) -> list[Entry]:
    rows = (
        Referral.objects.filter(Q(referrer=contact) | Q(friend=contact))
        .select_related("referrer", "friend", "program")
        .order_by("-created_at", "-id")[:limit]
    )
    entries = []
    for row in rows:
        if row.referrer_id == contact.pk:
            title = _("Referred %(friend)s") % {"friend": row.friend}
        else:
            title = _("Referred by %(referrer)s") % {"referrer": row.referrer}
        entries.append(
            Entry(
                when=row.created_at,
                kind="referral",
                title=title,
                detail=row.program.name,
                link=admin_link("growth_referral", row.pk),
                status=row.get_status_display(),
                status_variant=REFERRAL_VARIANTS.get(row.status, ""),
                sort_id=row.pk,
            )
        )
    return entries


def register_timeline_sources() -> None:
    register_timeline_source(kind="loyalty", label=gettext_lazy("Loyalty"), policy=policies.can_view_loyalty, fetch=loyalty_entries)
    register_timeline_source(
        kind="gift_card", label=gettext_lazy("Gift cards"), policy=policies.can_view_gift_card_ledger, fetch=gift_card_entries
    )
    register_timeline_source(
        kind="referral", label=gettext_lazy("Referrals"), policy=policies.can_view_referral_list, fetch=referral_entries
    )
