"""Referrals: a friend signs up with a code; fraud rules (self-referral, shared IP/device,
first qualifying order only, reversal on refund); daily rewards with an email."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from growth.errors import (
    ReferralNotEligible,
    ReferralProgramClosed,
    ReferralRejected,
    ReferralStateError,
    SelfReferral,
    UnknownReferralCode,
)
from growth.loyalty import redeem_points
from growth.models import LoyaltyAccount, LoyaltyTransaction, Referral, ReferralReward
from growth.queries import referral_stats
from growth.referrals import (
    canonical_address,
    canonical_email,
    get_or_create_referral_code,
    process_referral_rewards,
    reject_referral,
    sign_up_with_referral,
)
from marketing.events import record_order
from messaging.contacts import create_contact, update_contact
from messaging.models import AuditEntry, Contact, OutboxMessage

pytestmark = pytest.mark.django_db(transaction=True)

Status = Referral.Status


@pytest.fixture
def code(referral_program, referrer) -> str:
    return get_or_create_referral_code(contact=referrer).code


def sign_up(code: str, email: str, **kwargs) -> Referral:
    return sign_up_with_referral(code=code, email=email, **kwargs)


def test_my_code_is_stable_and_shows_in_the_stats(referral_program, referrer):
    first = get_or_create_referral_code(contact=referrer)
    assert get_or_create_referral_code(contact=referrer).pk == first.pk
    stats = referral_stats(contact=referrer)
    assert stats["code"] == first.code and stats["url"].endswith(f"/r/{first.code}/")
    assert stats["total"] == 0


def test_a_friend_signs_up_and_their_first_qualifying_order_is_rewarded(code, referrer, friend_email, loyalty_program):
    call_command("sync_templates", verbosity=0)
    referral = sign_up(code, friend_email, first_name="Linus", ip_address="198.51.100.4", device_id="dev-1")
    assert referral.status == Status.PENDING and referral.friend.email == friend_email
    friend = referral.friend
    # an order under the minimum does not qualify; the next one does; later ones change nothing
    record_order(contact=friend, external_id="F-1", amount="20", status="paid")
    assert Referral.objects.get().status == Status.PENDING
    record_order(contact=friend, external_id="F-2", amount="45", status="paid")
    record_order(contact=friend, external_id="F-3", amount="99", status="paid")
    referral.refresh_from_db()
    assert (referral.status, referral.order_reference) == (Status.QUALIFIED, "F-2")
    # the daily job rewards both sides once, and emails the referrer
    assert process_referral_rewards()["rewarded"] == 1
    assert process_referral_rewards()["rewarded"] == 0
    referral.refresh_from_db()
    assert referral.status == Status.REWARDED
    assert {(r.role, r.kind, r.value) for r in ReferralReward.objects.all()} == {
        ("referrer", "points", Decimal("500.00")),
        ("friend", "percent", Decimal("10.00")),
    }
    assert LoyaltyAccount.objects.get(contact=referrer).balance == 500
    assert OutboxMessage.objects.filter(dedup_key=f"referral-reward:{referral.pk}", contact=referrer).count() == 1
    assert referral_stats(contact=referrer)["referrals"]["rewarded"] == 1


@pytest.mark.parametrize(
    ("email", "phone", "address"),
    [
        ("GRACE@example.com", "", ""),  # same email, other case
        ("grace+friend@example.com", "", ""),  # a +tag
        ("other@example.com", "06 12 34 56 78", ""),  # same phone, local format
        ("other@example.com", "", "12, Rue de la PAIX  75002 paris"),  # same address, written differently
    ],
)
def test_self_referral_is_refused_and_nothing_is_recorded(code, referrer, email, phone, address):
    update_contact(actor=None, contact=referrer, attributes={"address": "12 rue de la Paix, 75002 Paris"})
    with pytest.raises(SelfReferral, match="your own referral code"):
        sign_up(code, email, phone=phone, address=address)
    assert not Referral.objects.exists()


def test_gmail_dots_and_googlemail_are_the_same_person(referral_program):
    assert canonical_email("g.race+x@googlemail.com") == canonical_email("grace@gmail.com")
    assert canonical_address("12 Rue de la Paix") == canonical_address("12 rue de la paix.")


def test_a_friend_who_later_takes_the_referrers_address_is_rejected_at_qualification(code, referrer):
    update_contact(actor=None, contact=referrer, attributes={"address": "3 Avenue Foch, Lyon"})
    referral = sign_up(code, "sam@example.net")
    update_contact(actor=None, contact=referral.friend, attributes={"address": "3 av. foch lyon"})
    record_order(contact=referral.friend, external_id="S-1", amount="100", status="paid")
    referral.refresh_from_db()
    assert (referral.status, referral.rejection_reason) == (Status.REJECTED, Referral.Reason.SELF_REFERRAL)


def statuses_of(code: str, emails: list[str], **kwargs) -> list[str]:
    statuses = []
    for n, email in enumerate(emails):
        extra = {key: value(n) if callable(value) else value for key, value in kwargs.items()}
        try:
            statuses.append(sign_up(code, email, **extra).status)
        except ReferralRejected:
            statuses.append("refused")
    return statuses


def test_sign_ups_beyond_the_threshold_from_one_ip_are_refused_and_create_nothing(code, referral_program):
    # the default threshold is 3 per IP or device within 24 hours
    statuses = statuses_of(code, [f"f{n}@example.net" for n in range(5)], ip_address="203.0.113.7")
    assert statuses == [Status.PENDING] * 3 + ["refused"] * 2
    # no contact and no referral for the refused ones; the refusal is audited
    assert not Contact.objects.filter(email__in=["f3@example.net", "f4@example.net"]).exists()
    assert Referral.objects.count() == 3
    assert AuditEntry.objects.filter(verb="referral_refused").count() == 2
    # another IP is fine, and the window moves on
    assert sign_up(code, "g@example.net", ip_address="203.0.113.8").status == Status.PENDING
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert sign_up(code, "h@example.net", ip_address="203.0.113.7").status == Status.PENDING


def test_sign_ups_from_one_device_count_across_ips(code):
    statuses = statuses_of(code, [f"d{n}@example.net" for n in range(4)], ip_address=lambda n: f"198.51.100.{n}", device_id="same-device")
    assert statuses == [Status.PENDING] * 3 + ["refused"]


def test_a_refused_sign_up_of_a_known_contact_writes_nothing_either(code):
    for n in range(3):
        sign_up(code, f"x{n}@example.net", ip_address="203.0.113.7")
    known = create_contact(actor=None, email="known@example.net")
    with pytest.raises(ReferralRejected):
        sign_up(code, "known@example.net", ip_address="203.0.113.7")
    assert not Referral.objects.filter(friend=known).exists()
    assert process_referral_rewards()["rewarded"] == 0
    assert not ReferralReward.objects.exists()


def test_refund_before_reward_rejects_the_referral(code, loyalty_program):
    referral = sign_up(code, "r1@example.net")
    record_order(contact=referral.friend, external_id="Q-1", amount="100", status="paid")
    record_order(contact=referral.friend, external_id="Q-1", amount="100", status="refunded")
    referral.refresh_from_db()
    assert (referral.status, referral.rejection_reason) == (Status.REJECTED, Referral.Reason.REFUNDED)
    assert process_referral_rewards()["rewarded"] == 0
    # a second order later does not bring the reward back: only the first qualifying order counts
    record_order(contact=referral.friend, external_id="Q-2", amount="100", status="paid")
    referral.refresh_from_db()
    assert referral.status == Status.REJECTED


def test_refund_after_reward_reverses_it_and_takes_the_points_back(code, referrer, loyalty_program):
    referral = sign_up(code, "r2@example.net")
    record_order(contact=referral.friend, external_id="Q-3", amount="100", status="paid")
    process_referral_rewards()
    assert LoyaltyAccount.objects.get(contact=referrer).balance == 500
    record_order(contact=referral.friend, external_id="Q-3", amount="100", status="refunded")
    referral.refresh_from_db()
    assert referral.status == Status.REVERSED
    assert not ReferralReward.objects.filter(reversed_at__isnull=True).exists()
    account = LoyaltyAccount.objects.get(contact=referrer)
    assert account.balance == 0
    assert account.transactions.filter(kind=LoyaltyTransaction.Kind.REVERSED).count() == 1


def test_reversal_cannot_overdraw_points_already_spent(code, referrer, loyalty_program):
    referral = sign_up(code, "r3@example.net")
    record_order(contact=referral.friend, external_id="Q-4", amount="100", status="paid")
    process_referral_rewards()
    redeem_points(contact=referrer, points=400, idempotency_key="spent")
    record_order(contact=referral.friend, external_id="Q-4", amount="100", status="refunded")
    assert LoyaltyAccount.objects.get(contact=referrer).balance == 0


def test_unknown_code_closed_program_existing_customer_and_second_referral_are_refused(code, referral_program, referrer):
    with pytest.raises(UnknownReferralCode):
        sign_up("NOPE1234", "n@example.net")
    customer = Contact.objects.create(email="old@example.net")
    record_order(contact=customer, external_id="OLD-1", amount="10", status="paid")
    with pytest.raises(ReferralNotEligible, match="new customers"):
        sign_up(code, "old@example.net")
    sign_up(code, "once@example.net")
    with pytest.raises(ReferralNotEligible, match="already been referred"):
        sign_up(code, "once@example.net")
    referral_program.ends_at = timezone.now() - timedelta(minutes=1)
    referral_program.starts_at = timezone.now() - timedelta(days=1)
    referral_program.save()
    with pytest.raises(ReferralProgramClosed):
        sign_up(code, "late@example.net")
    assert Referral.objects.count() == 1


def test_pending_referrals_expire_after_the_programs_days(code, referral_program):
    referral = sign_up(code, "slow@example.net")
    with time_machine.travel(timezone.now() + timedelta(days=referral_program.expiry_days + 1)):
        assert process_referral_rewards()["expired"] == 1
    referral.refresh_from_db()
    assert referral.status == Status.EXPIRED


def test_staff_reject_needs_a_reason_is_audited_and_follows_the_state_table(code, support):
    referral = sign_up(code, "s@example.net")
    reject_referral(referral=referral, reason="Same household, confirmed by phone", actor=support)
    referral.refresh_from_db()
    assert (referral.status, referral.rejection_reason, referral.closed_by) == (Status.REJECTED, "staff", support)
    assert AuditEntry.objects.filter(verb="referral_rejected", actor=support).exists()
    with pytest.raises(ReferralStateError):
        reject_referral(referral=referral, reason="again", actor=support)
