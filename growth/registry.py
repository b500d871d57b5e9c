"""Growth's extensions of the lower apps: merge tags (messaging) and segment fields
(marketing), registered from GrowthConfig.ready() so those apps never import growth."""

from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from growth.models import GiftCard, LoyaltyAccount, LoyaltyTier, Referral
from growth.queries import loyalty_account_for, referral_code_for
from growth.referrals import referral_url
from marketing.segments.fields.builders import aggregate_q
from marketing.segments.fields.parsers import parse_list, require_text
from marketing.segments.fields.registry import CHOICE_OPERATORS, NUMBER_OPERATORS, Rule, SegmentField, register_segment_field
from messaging.content.merge_tags import register_merge_tag
from messaging.models import Contact

GROWTH = _("Growth")


# --- merge tags -----------------------------------------------------------------------------------
def _referral_code(contact: Contact) -> str:
    code = referral_code_for(contact=contact)
    return code.code if code else ""


def _referral_url(contact: Contact) -> str:
    code = _referral_code(contact)
    return referral_url(code) if code else ""


def _loyalty_account(contact: Contact):
    return loyalty_account_for(contact=contact)


def _points_balance(contact: Contact) -> int:
    account = _loyalty_account(contact)
    return account.balance if account else 0


def _tier(contact: Contact) -> str:
    account = _loyalty_account(contact)
    return account.tier.name if account and account.tier else ""


def _gift_card_last4(contact: Contact) -> str:
    card = GiftCard.objects.filter(recipient=contact, disabled_at__isnull=True, balance__gt=0).order_by("-created_at").first()
    return card.last4 if card else ""


def register_merge_tags() -> None:
    register_merge_tag("referral.code", description=_("The contact's referral code"), sample="K7M2Q9XD", resolve=_referral_code)
    register_merge_tag(
        "referral.url", description=_("The contact's referral link"), sample="https://example.com/r/K7M2Q9XD/", resolve=_referral_url
    )
    register_merge_tag("loyalty.balance", description=_("Loyalty points balance"), sample=860, resolve=_points_balance)
    register_merge_tag("loyalty.tier", description=_("Loyalty tier"), sample="Gold", resolve=_tier)
    register_merge_tag(
        "gift_card.last4", description=_("Last 4 characters of the contact's gift card"), sample="X9QD", resolve=_gift_card_last4
    )


# --- segment fields --------------------------------------------------------------------------------
def _active_accounts():
    return LoyaltyAccount.objects.filter(program__is_active=True)


def tier_choices() -> list[tuple[str, str]]:
    names = LoyaltyTier.objects.filter(program__is_active=True).values_list("name", flat=True).distinct().order_by("name")
    return [(name, name) for name in names]


def loyalty_tier_q(rule: Rule) -> Q:
    names = parse_list(rule.value) if rule.operator in ("in", "not_in") else [require_text(rule.value)]
    q = Q(pk__in=_active_accounts().filter(tier__name__in=names).values("contact"))
    return ~q if rule.operator.startswith("not_") else q


def loyalty_points_q(rule: Rule) -> Q:
    return aggregate_q(_active_accounts().order_by().values("contact").annotate(b=Sum("balance")), "b", rule)


def referrals_rewarded_q(rule: Rule) -> Q:
    rewarded = Referral.objects.filter(status=Referral.Status.REWARDED).order_by().values("referrer").annotate(n=Count("id"))
    return aggregate_q(rewarded, "n", rule, by="referrer")


def gift_card_balance_q(rule: Rule) -> Q:
    usable = GiftCard.objects.filter(recipient__isnull=False, disabled_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )
    return aggregate_q(usable.order_by().values("recipient").annotate(t=Sum("balance")), "t", rule, by="recipient")


def register_segment_fields() -> None:
    register_segment_field(
        SegmentField("loyalty_tier", _("Loyalty tier"), GROWTH, CHOICE_OPERATORS, loyalty_tier_q, choices=tier_choices, value_hint="Gold")
    )
    register_segment_field(SegmentField("loyalty_points", _("Loyalty points balance"), GROWTH, NUMBER_OPERATORS, loyalty_points_q))
    register_segment_field(SegmentField("referrals_rewarded", _("Rewarded referrals"), GROWTH, NUMBER_OPERATORS, referrals_rewarded_q))
    register_segment_field(SegmentField("gift_card_balance", _("Gift card balance"), GROWTH, NUMBER_OPERATORS, gift_card_balance_q))
