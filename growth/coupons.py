"""Referral coupons: single-use codes that discount rewards hand out.

A program side whose reward is a percent or fixed discount may hand out a code: one from a
pool the host uploaded (`upload_coupon_codes`) or one Mailroom generates (cryptographically
random, from an alphabet without look-alikes, with the program's prefix). Only a SHA-256
hash and the last four characters are kept in clear. A pool code waits sealed (Fernet,
growth's own salt) until `issue_coupon` takes it under a row lock (SKIP LOCKED on
PostgreSQL: two rewards never get the same code); its seal is dropped as it is handed out.
From then on the code exists only in the reward email (a sealed message secret) and in the
`referral.coupon_issued` webhook to the host (a sealed delivery body). A refund revokes the
coupon and tells the host (`referral.coupon_revoked`, with the coupon id and last four).
"""

import hashlib
import re
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from growth.errors import CouponPoolEmpty
from growth.giftcards import ALPHABET
from growth.models import CouponCode, CouponSource, Referral, ReferralProgram, ReferralReward
from growth.webhook_events import REFERRAL_COUPON_ISSUED, REFERRAL_COUPON_REVOKED
from messaging.audit import record_audit
from messaging.errors import InvalidInput
from messaging.secrets import seal_text, unseal_text
from messaging.webhooks.emit import emit

COUPON_SALT = "mailroom.growth.coupon-codes"
GENERATED_GROUPS = 3  # REF-XXXX-XXXX-XXXX: 12 symbols of 32, 60 random bits
MAX_CODE_LENGTH = 64
MIN_CODE_LENGTH = 4
MAX_UPLOAD = 10_000
CODE_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
Status = CouponCode.Status


def coupon_hash(code: str) -> str:
    """Case and separators do not matter to a person typing a code at checkout: "ref-ab12"
    and "REFAB12" are the same code (and a duplicate in a pool)."""
    return hashlib.sha256("".join(ch for ch in code.upper() if ch.isalnum()).encode()).hexdigest()


def last4_of(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())[-4:]


def generate_coupon_code(prefix: str = "") -> str:
    groups = ["".join(secrets.choice(ALPHABET) for _n in range(4)) for _g in range(GENERATED_GROUPS)]
    return "-".join([prefix, *groups] if prefix else groups)


# --- the pool --------------------------------------------------------------------------------


@dataclass
class UploadResult:
    added: int
    duplicates: int  # in the upload twice, or already known


def parse_codes(text: str) -> list[str]:
    """The codes in `text` (one per line; blank lines ignored). Raises InvalidInput naming
    each bad line (up to ten); nothing is stored then."""
    lines = [(number, line.strip()) for number, line in enumerate((text or "").splitlines(), start=1)]
    codes = [(number, line) for number, line in lines if line]
    if not codes:
        raise InvalidInput(_("No codes found: give one code per line."), fields={"codes": [_("This field is required.")]})
    if len(codes) > MAX_UPLOAD:
        raise InvalidInput(
            _("Too many codes: at most %(max)d per upload (this one has %(count)d).") % {"max": MAX_UPLOAD, "count": len(codes)},
            fields={"codes": [_("Too many codes.")]},
        )
    problems = []
    for number, code in codes:
        if len(code) > MAX_CODE_LENGTH:
            problems.append(_("line %(line)d: longer than %(max)d characters") % {"line": number, "max": MAX_CODE_LENGTH})
        elif not CODE_SHAPE.fullmatch(code):
            problems.append(_("line %(line)d: only letters, digits, - and _ are allowed") % {"line": number})
        elif len(re.sub(r"[^A-Za-z0-9]", "", code)) < MIN_CODE_LENGTH:
            problems.append(_("line %(line)d: shorter than %(min)d letters or digits") % {"line": number, "min": MIN_CODE_LENGTH})
    if problems:
        shown = "; ".join(problems[:10]) + ("; …" if len(problems) > 10 else "")
        raise InvalidInput(
            ngettext(
                "%(count)d bad code, nothing was added: %(lines)s.", "%(count)d bad codes, nothing was added: %(lines)s.", len(problems)
            )
            % {"count": len(problems), "lines": shown},
            fields={"codes": problems[:10]},
        )
    return [code for _number, code in codes]


def upload_coupon_codes(*, actor: AbstractBaseUser | None, program: ReferralProgram, role: str, text: str) -> UploadResult:
    """Add the host's codes (one per line) to the pool of one side of a program. All or
    nothing: one bad line and nothing is stored. A code given twice, or already known to
    Mailroom (in any pool, or generated), is skipped and counted."""
    if role not in ReferralReward.Role.values:
        raise InvalidInput(_("Choose whose pool: referrer or friend."), fields={"role": [_("Not a valid choice.")]})
    codes = parse_codes(text)
    unique: dict[str, str] = {}
    for code in codes:
        unique.setdefault(coupon_hash(code), code)
    with transaction.atomic():
        program = ReferralProgram.objects.select_for_update().get(pk=program.pk)
        known = set(CouponCode.objects.filter(code_hash__in=list(unique)).values_list("code_hash", flat=True))
        uploaded_by = actor if actor is not None and actor.is_authenticated else None
        rows = [
            CouponCode(
                program=program,
                role=role,
                source=CouponSource.POOL,
                code_hash=digest,
                last4=last4_of(code),
                sealed_code=seal_text(code, salt=COUPON_SALT),
                uploaded_by=uploaded_by,
            )
            for digest, code in unique.items()
            if digest not in known
        ]
        CouponCode.objects.bulk_create(rows, batch_size=500)
        result = UploadResult(added=len(rows), duplicates=len(codes) - len(rows))
        record_audit(
            actor=actor,
            verb="coupon_codes_uploaded",
            target=program,
            changes={"role": role, "added": result.added, "skipped": result.duplicates},
        )
    return result


def pool_counts(program: ReferralProgram) -> dict[str, dict[str, int]]:
    """{role: {status: count}} for the program's pool codes."""
    counts = {role: dict.fromkeys(Status.values, 0) for role in ReferralReward.Role.values}
    rows = CouponCode.objects.filter(program=program, source=CouponSource.POOL).values("role", "status").annotate(n=Count("pk"))
    for row in rows.order_by():
        counts[row["role"]][row["status"]] = row["n"]
    return counts


def referrals_waiting_for_codes(program: ReferralProgram) -> int:
    """Qualified referrals the daily job could not reward because a pool it needs is empty."""
    sides = Q(pk__in=[])
    for role in ReferralReward.Role.values:
        if program.coupon_source(role) == CouponSource.POOL:
            available = CouponCode.objects.filter(program=program, role=role, status=Status.AVAILABLE)
            if not available.exists():
                sides = Q()
    return Referral.objects.filter(sides, program=program, status=Referral.Status.QUALIFIED).count()


# --- issuing and revoking ----------------------------------------------------------------------


def _take_from_pool(*, program: ReferralProgram, role: str) -> CouponCode:
    waiting = CouponCode.objects.filter(program=program, role=role, status=Status.AVAILABLE).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        waiting = waiting.select_for_update(skip_locked=True)
    coupon = waiting.first()  # SQLite: writers are serialised (IMMEDIATE transactions)
    if coupon is None:
        raise CouponPoolEmpty(
            _("The %(role)s coupon pool of “%(program)s” is empty: upload more codes; the reward is given once there are some.")
            % {"role": ReferralReward.Role(role).label.lower(), "program": program.name}
        )
    return coupon


def _generate(*, reward: ReferralReward, prefix: str) -> tuple[CouponCode, str]:
    for _attempt in range(5):
        code = generate_coupon_code(prefix)
        try:
            with transaction.atomic():
                coupon = CouponCode.objects.create(
                    program_id=reward.referral.program_id,
                    role=reward.role,
                    source=CouponSource.GENERATED,
                    code_hash=coupon_hash(code),
                    last4=last4_of(code),
                    status=Status.ISSUED,
                    reward=reward,
                    issued_at=timezone.now(),
                )
            return coupon, code
        except IntegrityError:  # 60 random bits: practically never
            continue
    raise IntegrityError("could not generate a unique coupon code")


def issue_coupon(*, reward: ReferralReward) -> tuple[CouponCode, str]:
    """Within the reward's transaction: the coupon for `reward` and its code in clear (to be
    handed to the email as a secret and to the host's webhook, sealed). Raises
    CouponPoolEmpty when the pool it needs has no code left (the caller rolls back)."""
    program = reward.referral.program
    source = program.coupon_source(reward.role)
    if source == CouponSource.GENERATED:
        coupon, code = _generate(reward=reward, prefix=program.coupon_prefix)
    else:
        coupon = _take_from_pool(program=program, role=reward.role)
        code = unseal_text(coupon.sealed_code, salt=COUPON_SALT)
        coupon.status, coupon.reward, coupon.issued_at, coupon.sealed_code = Status.ISSUED, reward, timezone.now(), ""
        coupon.save(update_fields=["status", "reward", "issued_at", "sealed_code"])
    emit(
        REFERRAL_COUPON_ISSUED,
        {
            "referral_id": reward.referral_id,
            "reward_id": reward.pk,
            "role": reward.role,
            "contact_id": reward.contact_id,
            "coupon_id": coupon.pk,
            "code": code,
            "source": coupon.source,
            "discount": {"kind": reward.kind, "value": str(reward.value), "currency": reward.currency},
        },
    )
    return coupon, code


def revoke_coupon(*, reward: ReferralReward, actor: AbstractBaseUser | None) -> CouponCode | None:
    """Within the reversal's transaction: the reward's coupon can no longer be used; the host
    hears of it (by coupon id and last four: the code itself is gone)."""
    coupon = CouponCode.objects.select_for_update().filter(reward=reward, status=Status.ISSUED).first()
    if coupon is None:
        return None
    coupon.status, coupon.revoked_at = Status.REVOKED, timezone.now()
    coupon.save(update_fields=["status", "revoked_at"])
    record_audit(actor=actor, verb="coupon_revoked", target=coupon, changes={"reward": reward.pk})
    emit(
        REFERRAL_COUPON_REVOKED,
        {
            "referral_id": reward.referral_id,
            "reward_id": reward.pk,
            "role": reward.role,
            "contact_id": reward.contact_id,
            "coupon_id": coupon.pk,
            "last4": coupon.last4,
        },
    )
    return coupon
