"""Growth's sources on the contact page's timeline (messaging.timeline): the gift-card ledger
shows the card as the console does (last 4), never its code; a referral reads from each side."""

import pytest

from growth.giftcards import issue_gift_card, redeem_gift_card
from growth.referrals import get_or_create_referral_code, sign_up_with_referral
from growth.timeline import gift_card_entries, referral_entries
from messaging.models import Contact
from messaging.timeline import contact_timeline

pytestmark = pytest.mark.django_db


def test_a_gift_card_appears_by_its_last_four_with_each_ledger_line(admin_user, referrer):
    issued = issue_gift_card(actor=admin_user, amount="50", recipient=referrer, send_email=False)
    redeem_gift_card(code=issued.code, amount="12.50", idempotency_key="r-1", actor=admin_user, order_reference="SHOP-9")
    redemption, purchase = gift_card_entries(referrer, 10)
    last4 = issued.card.last4
    assert purchase.title == f"Gift card •••• {last4}: Purchase +50.00 EUR" and purchase.detail == "balance 50.00 EUR"
    assert redemption.title == f"Gift card •••• {last4}: Redemption -12.50 EUR"
    assert redemption.detail == "balance 37.50 EUR · order SHOP-9"
    assert redemption.link == f"/admin/growth/giftcard/{issued.card.pk}/change/"
    code = issued.code.replace("-", "")
    assert all(code not in f"{e.title}{e.detail}{e.link}".replace("-", "") for e in (redemption, purchase))
    assert len(gift_card_entries(referrer, 1)) == 1  # the limit is the query's


def test_a_referral_reads_from_the_referrer_and_from_the_friend(referral_program, referrer, friend_email, support):
    code = get_or_create_referral_code(contact=referrer).code
    sign_up_with_referral(code=code, email=friend_email, first_name="Linus")
    friend = Contact.objects.get(email=friend_email)
    (made,) = referral_entries(referrer, 10)
    (received,) = referral_entries(friend, 10)
    assert (made.title, made.status, made.detail) == (f"Referred {friend_email}", "Pending", "Invite a friend")
    assert received.title == "Referred by grace@example.com"
    # Support may see referrals (growth.view_referral) on the contact page
    assert [entry.kind for entry in contact_timeline(contact=referrer, user=support).entries] == ["referral"]
