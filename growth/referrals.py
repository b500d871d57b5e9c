"""Referral actions: "my code", a friend signing up with it, qualification on the friend's
first qualifying order, daily rewards, reversal on refund, and staff rejection.

Fraud rules live here and nowhere else: no self-referral (same email, phone or postal
address, compared normalised), at most N sign-ups per IP address or device within the
program's window, a reward only for the friend's first qualifying order, and reversal when
that order is refunded.

A discount reward may hand out a single-use coupon code (growth.coupons): it goes to the
customer in the reward email (a sealed secret) and to the host through a sealed webhook.
When a pool it needs is empty the referral stays qualified and the daily job tries again.
"""

import logging
import re
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from growth.coupons import issue_coupon, revoke_coupon
from growth.errors import (
    CouponPoolEmpty,
    ReferralNotEligible,
    ReferralProgramClosed,
    ReferralRejected,
    ReferralStateError,
    SelfReferral,
    UnknownReferralCode,
)
from growth.giftcards import ALPHABET
from growth.loyalty import credit_points, reverse_points_for_order
from growth.models import Referral, ReferralCode, ReferralProgram, ReferralReward, RewardKind
from growth.notifications import email_on_commit
from marketing.models import Order
from messaging import site
from messaging.audit import record_audit
from messaging.contact_fields import normalise_email, normalise_phone
from messaging.contacts import create_contact
from messaging.errors import InvalidInput
from messaging.models import Contact

logger = logging.getLogger(__name__)

CODE_LENGTH = 8
Status = Referral.Status
Reason = Referral.Reason


# --- programs and codes ----------------------------------------------------------------------


def program_is_open(program: ReferralProgram, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        program.is_active and (program.starts_at is None or program.starts_at <= now) and (program.ends_at is None or now < program.ends_at)
    )


def open_program(*, now: datetime | None = None) -> ReferralProgram | None:
    now = now or timezone.now()
    candidates = ReferralProgram.objects.filter(is_active=True).filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now))
    return candidates.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now)).order_by("pk").first()


def normalise_referral_code(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())[:16]


def referral_url(code: str) -> str:
    return site.current().link(reverse("growth:referral-landing", args=[code]))


def _code_for(*, contact: Contact, program: ReferralProgram | None) -> tuple[ReferralCode, bool]:
    """(the contact's code for the program, whether it was made just now)."""
    program = program or open_program()
    if program is None:
        raise ReferralProgramClosed(_("There is no referral program running."))
    if contact.deleted_at or contact.erased_at:
        raise ReferralNotEligible(_("A deleted contact cannot refer friends."))
    existing = ReferralCode.objects.filter(program=program, contact=contact).first()
    if existing is not None:
        return existing, False
    for _attempt in range(5):
        code = "".join(secrets.choice(ALPHABET) for _n in range(CODE_LENGTH))
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(program=program, contact=contact, code=code), True
        except IntegrityError:  # the contact got a code concurrently, or (rarely) the code is taken
            existing = ReferralCode.objects.filter(program=program, contact=contact).first()
            if existing is not None:
                return existing, False
    raise IntegrityError("could not generate a unique referral code")


def get_or_create_referral_code(*, contact: Contact, program: ReferralProgram | None = None) -> ReferralCode:
    """The contact's shareable code for the program (the open one by default)."""
    return _code_for(contact=contact, program=program)[0]


def create_referral_code(
    *, actor: AbstractBaseUser | None, contact: Contact, program: ReferralProgram | None = None
) -> tuple[ReferralCode, bool]:
    """A person (console, API) gives a contact their shareable code: (code, created). A
    contact who already has one keeps it and nothing is written; a new code is audited in
    the same transaction, so there is never a code without its audit entry."""
    with transaction.atomic():
        code, created = _code_for(contact=contact, program=program)
        if created:
            record_audit(
                actor=actor, verb="referral_code_created", target=code, changes={"contact": contact.pk, "program": code.program_id}
            )
    return code, created


# --- identity comparison -----------------------------------------------------------------------

GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}


def canonical_email(value: str | None) -> str:
    """Lower case, no +tag; Gmail also ignores dots. ada+promo@gmail.com == a.da@googlemail.com."""
    value = (value or "").strip().lower()
    local, at, domain = value.partition("@")
    if not at:
        return value
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def canonical_phone(value: str | None) -> str:
    try:
        return normalise_phone(value) or ""
    except ValidationError:
        return re.sub(r"\D", "", value or "")


ADDRESS_WORDS = {"street": "st", "avenue": "av", "ave": "av", "road": "rd", "boulevard": "bd", "bvd": "bd", "apartment": "apt"}


def canonical_address(value) -> str:
    """A postal address as comparable text: case, accents of punctuation, spacing and common
    abbreviations do not matter. Accepts a string or a dict of address lines."""
    if isinstance(value, dict):
        value = " ".join(str(part) for part in value.values() if part)
    words = re.findall(r"[0-9a-zà-ÿ]+", str(value or "").lower())
    return " ".join(ADDRESS_WORDS.get(word, word) for word in words)


def address_of(contact: Contact) -> str:
    return canonical_address(contact.attributes.get("address", "")) if isinstance(contact.attributes, dict) else ""


def is_self_referral(*, referrer: Contact, email: str | None, phone: str | None, address) -> bool:
    if email and referrer.email and canonical_email(email) == canonical_email(referrer.email):
        return True
    if phone and referrer.phone and canonical_phone(phone) == canonical_phone(referrer.phone):
        return True
    mine = address_of(referrer)
    return bool(mine) and canonical_address(address) == mine


# --- the friend signs up -----------------------------------------------------------------------


def _transition(referral: Referral, to: str) -> None:
    if to not in Referral.TRANSITIONS[referral.status]:
        raise ReferralStateError(
            _("A %(status)s referral cannot become %(to)s.") % {"status": referral.get_status_display(), "to": Status(to).label}
        )
    referral.status = to


def sign_up_with_referral(
    *,
    code: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
    phone: str = "",
    address: str = "",
    locale: str = "en",
    ip_address: str | None = None,
    device_id: str = "",
    actor: AbstractBaseUser | None = None,
) -> Referral:
    """A friend signs up with a referral code. Returns the pending referral. When the
    shared IP/device rule trips, nothing is created (no contact, no referral: an anonymous
    flood leaves no rows behind), the refusal is audited and ReferralRejected raised."""
    referral_code = ReferralCode.objects.select_related("program", "contact").filter(code=normalise_referral_code(code)).first()
    if referral_code is None:
        raise UnknownReferralCode(_("This referral code is not valid."))
    program, referrer = referral_code.program, referral_code.contact
    if not program_is_open(program):
        raise ReferralProgramClosed(_("This referral program is not running."))
    try:
        email = normalise_email(email)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), fields={"email": error.messages}) from None
    if not email:
        raise InvalidInput(_("An email address is required."), fields={"email": [_("This field is required.")]})
    if is_self_referral(referrer=referrer, email=email, phone=phone, address=address):
        raise SelfReferral(_("You cannot use your own referral code."))
    with transaction.atomic():
        # One sign-up at a time per program: the IP/device count below cannot be raced.
        program = ReferralProgram.objects.select_for_update().get(pk=program.pk)
        friend = Contact.objects.filter(email=email).first()
        if friend is not None:
            if friend.pk == referrer.pk or is_self_referral(
                referrer=referrer, email=friend.email, phone=friend.phone, address=address_of(friend)
            ):
                raise SelfReferral(_("You cannot use your own referral code."))
            if friend.deleted_at or friend.erased_at:
                raise ReferralNotEligible(_("This email address cannot be used for a referral."))
            if Order.objects.filter(contact=friend, status__in=Order.REVENUE_STATUSES).exists():
                raise ReferralNotEligible(_("Referrals are for new customers only."))
            if Referral.objects.filter(program=program, friend=friend).exists():
                raise ReferralNotEligible(_("This person has already been referred."))
        now = timezone.now()
        shared = Q(signup_ip=ip_address) if ip_address else Q(pk__in=[])
        if device_id:
            shared |= Q(device_id=device_id)
        window_start = now - timedelta(hours=program.shared_signup_window_hours)
        rejected = bool(ip_address or device_id) and (
            Referral.objects.filter(shared, program=program, created_at__gte=window_start).count() >= program.shared_signup_threshold
        )
        if not rejected:
            if friend is None:  # through messaging's action, only once the referral is accepted
                fields = {"email": email, "first_name": first_name[:150], "last_name": last_name[:150], "locale": locale}
                if phone:
                    fields["phone"] = phone
                if address:
                    fields["attributes"] = {"address": address[:300]}
                friend = create_contact(actor=actor, **fields)
            referral = Referral.objects.create(
                program=program,
                code=referral_code,
                referrer=referrer,
                friend=friend,
                signup_ip=ip_address or None,
                device_id=(device_id or "")[:64],
                expires_at=now + timedelta(days=program.expiry_days) if program.expiry_days else None,
            )
            record_audit(actor=actor, verb="referral_signed_up", target=referral, changes={"status": referral.status})
            return referral
    record_audit(actor=actor, verb="referral_refused", target=referral_code, changes={"reason": Reason.SHARED_IP_OR_DEVICE})
    raise ReferralRejected(_("This referral cannot be accepted: too many sign-ups came from the same network or device."))


# --- orders --------------------------------------------------------------------------------------


def qualify_referral_for_order(*, friend: Contact, order_reference: str, amount, actor: AbstractBaseUser | None = None) -> Referral | None:
    """The friend paid an order: their pending referral qualifies if the order reaches the
    program's minimum. Only the first qualifying order counts; later ones change nothing."""
    referral_id = Referral.objects.filter(friend=friend, status=Status.PENDING).values_list("pk", flat=True).first()
    if referral_id is None:
        return None
    amount = Decimal(str(amount))
    with transaction.atomic():
        referral = Referral.objects.select_for_update().select_related("program", "referrer").get(pk=referral_id)
        if referral.status != Status.PENDING:  # qualified by a concurrent event
            return referral
        now = timezone.now()
        if referral.expires_at and referral.expires_at <= now:
            _transition(referral, Status.EXPIRED)
            referral.closed_at = now
            referral.save(update_fields=["status", "closed_at"])
            return referral
        friend = Contact.objects.get(pk=friend.pk)  # as stored now, not as the caller last saw it
        if is_self_referral(referrer=referral.referrer, email=friend.email, phone=friend.phone, address=address_of(friend)):
            _transition(referral, Status.REJECTED)
            referral.rejection_reason, referral.closed_at = Reason.SELF_REFERRAL, now
            referral.save(update_fields=["status", "rejection_reason", "closed_at"])
            record_audit(actor=actor, verb="referral_rejected", target=referral, changes={"reason": Reason.SELF_REFERRAL})
            return referral
        if amount < referral.program.minimum_purchase:
            return referral
        _transition(referral, Status.QUALIFIED)
        referral.order_reference, referral.order_amount, referral.qualified_at = order_reference, amount, now
        referral.save(update_fields=["status", "order_reference", "order_amount", "qualified_at"])
        record_audit(actor=actor, verb="referral_qualified", target=referral, changes={"order": order_reference})
    return referral


def reverse_referral_for_order(*, order_reference: str, actor: AbstractBaseUser | None = None) -> Referral | None:
    """The qualifying order was refunded: a qualified referral is rejected, a rewarded one
    reversed (its points taken back, its discounts marked reversed)."""
    referral_id = Referral.objects.filter(order_reference=order_reference).values_list("pk", flat=True).first()
    if referral_id is None:
        return None
    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=referral_id)
        now = timezone.now()
        if referral.status == Status.QUALIFIED:
            _transition(referral, Status.REJECTED)
            referral.rejection_reason = Reason.REFUNDED
        elif referral.status == Status.REWARDED:
            _transition(referral, Status.REVERSED)
            for reward in referral.rewards.filter(reversed_at__isnull=True).select_related("contact"):
                if reward.kind == RewardKind.POINTS:
                    reverse_points_for_order(contact=reward.contact, order_reference=_points_reference(referral, reward.role), actor=actor)
                revoke_coupon(reward=reward, actor=actor)
                reward.reversed_at = now
                reward.save(update_fields=["reversed_at"])
        else:
            return referral
        referral.closed_at = now
        referral.save(update_fields=["status", "rejection_reason", "closed_at"])
        record_audit(actor=actor, verb="referral_reversed", target=referral, changes={"status": referral.status, "order": order_reference})
    return referral


# --- rewards -------------------------------------------------------------------------------------


def _points_reference(referral: Referral, role: str) -> str:
    return f"referral:{referral.pk}:{role}"


def describe_reward(kind: str, value: Decimal, currency: str) -> str:
    if kind == RewardKind.PERCENT:
        return _("%(value)s%% off your next order") % {"value": f"{value.normalize():f}"}
    if kind == RewardKind.FIXED:
        return _("%(value)s %(currency)s off your next order") % {"value": f"{value:.2f}", "currency": currency}
    return _("%(value)s loyalty points") % {"value": int(value)}


def reward_referral(*, referral: Referral, actor: AbstractBaseUser | None = None) -> Referral:
    """Give both sides their reward, once, and email the referrer after commit (and the
    friend, when their reward is a coupon code). Raises CouponPoolEmpty, with nothing
    changed, when a side's code must come from a pool that has none left."""
    with transaction.atomic():
        referral = Referral.objects.select_for_update().select_related("program", "referrer", "friend", "code").get(pk=referral.pk)
        _transition(referral, Status.REWARDED)
        program = referral.program
        sides = (
            (ReferralReward.Role.REFERRER, referral.referrer, program.referrer_reward_kind, program.referrer_reward_value),
            (ReferralReward.Role.FRIEND, referral.friend, program.friend_reward_kind, program.friend_reward_value),
        )
        codes: dict[str, str] = {}
        for role, contact, kind, value in sides:
            if value <= 0:
                continue
            reward = ReferralReward.objects.create(
                referral=referral, role=role, contact=contact, kind=kind, value=value, currency=program.currency
            )
            if kind == RewardKind.POINTS:
                credited = credit_points(
                    contact=contact,
                    points=int(value),
                    reference=_points_reference(referral, role),
                    reason=_("Referral reward"),
                    actor=actor,
                )
                if credited is None:
                    logger.warning("referral %s: no loyalty program is running, %s points not credited", referral.pk, int(value))
            elif program.coupon_source(role):
                _coupon, codes[role] = issue_coupon(reward=reward)
        referral.rewarded_at = timezone.now()
        referral.save(update_fields=["status", "rewarded_at"])
        record_audit(actor=actor, verb="referral_rewarded", target=referral, changes={"coupons_for": sorted(codes.keys())})
        referrer_code = codes.get(ReferralReward.Role.REFERRER)
        email_on_commit(
            key="referral-reward",
            contact_id=referral.referrer_id,
            context={
                "reward": {"description": describe_reward(program.referrer_reward_kind, program.referrer_reward_value, program.currency)},
                "referral_url": referral_url(referral.code.code),
            },
            dedup_key=f"referral-reward:{referral.pk}",
            secrets={"reward.code": referrer_code} if referrer_code else None,  # sealed: never readable in the outbox
        )
        if friend_code := codes.get(ReferralReward.Role.FRIEND):
            email_on_commit(
                key="referral-reward",
                contact_id=referral.friend_id,
                context={
                    "reward": {
                        "description": describe_reward(program.friend_reward_kind, program.friend_reward_value, program.currency),
                        "for_friend": True,
                    },
                    "referral_url": referral_url(referral.code.code),
                },
                dedup_key=f"referral-reward:{referral.pk}:friend",
                secrets={"reward.code": friend_code},
            )
    return referral


def process_referral_rewards(*, now: datetime | None = None) -> dict[str, int]:
    """The daily job: expire stale pending referrals, reward qualified ones. Each referral is
    its own transaction, so one failure does not hold back the rest; one waiting for a
    coupon code from an empty pool stays qualified and is counted as waiting."""
    now = now or timezone.now()
    counts = {"expired": 0, "rewarded": 0, "waiting": 0, "failed": 0}
    stale = Referral.objects.filter(status=Status.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    for referral_id in list(stale):
        with transaction.atomic():
            referral = Referral.objects.select_for_update().get(pk=referral_id)
            if referral.status == Status.PENDING:
                referral.status, referral.closed_at = Status.EXPIRED, now
                referral.save(update_fields=["status", "closed_at"])
                counts["expired"] += 1
    for referral in Referral.objects.filter(status=Status.QUALIFIED).order_by("pk"):
        try:
            reward_referral(referral=referral)
            counts["rewarded"] += 1
        except ReferralStateError:  # rewarded or rejected meanwhile
            continue
        except CouponPoolEmpty as error:  # stays qualified: rewarded once codes are uploaded
            counts["waiting"] += 1
            logger.warning("referral %s waits for a coupon code: %s", referral.pk, error)
        except Exception:
            counts["failed"] += 1
            logger.exception("referral %s could not be rewarded", referral.pk)
    return counts


@transaction.atomic
def reject_referral(*, referral: Referral, reason: str, actor: AbstractBaseUser) -> Referral:
    """Staff reject a pending or qualified referral; a reason is required and audited."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Say why the referral is rejected."), fields={"reason": [_("This field is required.")]})
    referral = Referral.objects.select_for_update().get(pk=referral.pk)
    before = referral.status
    _transition(referral, Status.REJECTED)
    referral.rejection_reason, referral.note = Reason.STAFF, reason[:300]
    referral.closed_at, referral.closed_by = timezone.now(), actor
    referral.save(update_fields=["status", "rejection_reason", "note", "closed_at", "closed_by"])
    record_audit(
        actor=actor,
        verb="referral_rejected",
        target=referral,
        changes={"status": {"before": before, "after": referral.status}, "reason": reason},
    )
    return referral
