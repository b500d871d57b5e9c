"""The public referral page (strict CSP, device cookie, clear errors) and growth's merge
tags and segment fields registered into the lower apps."""

import pytest

from growth.giftcards import issue_gift_card
from growth.loyalty import earn_points_for_order
from growth.models import Referral
from growth.referrals import get_or_create_referral_code
from marketing.segments.fields.registry import Rule, get_segment_field
from messaging.contacts import create_contact
from messaging.content.merge_tags import contact_context, merge_tags
from messaging.models import Contact
from messaging.schedules import FIRST_RUNS, SCHEDULES

pytestmark = pytest.mark.django_db


@pytest.fixture
def code(referral_program, referrer) -> str:
    return get_or_create_referral_code(contact=referrer).code


def test_the_landing_page_invites_with_a_strict_policy_and_a_device_cookie(client, code):
    response = client.get(f"/r/{code.lower()}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Grace invites you" in page and "10% off your next order" in page
    csp = response["Content-Security-Policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    cookie = response.cookies["mr_device"]
    assert cookie["httponly"] and len(cookie.value) >= 16


def test_a_friend_signs_up_through_the_form(client, code):
    client.get(f"/r/{code}/")
    response = client.post(f"/r/{code}/", {"email": "linus@example.org", "first_name": "Linus"}, REMOTE_ADDR="198.51.100.20")
    assert response.status_code == 200 and b"You are signed up" in response.content
    referral = Referral.objects.get()
    assert (referral.friend.email, referral.signup_ip, referral.status) == ("linus@example.org", "198.51.100.20", "pending")
    assert referral.device_id == client.cookies["mr_device"].value


def test_self_referral_on_the_page_gets_a_clear_error(client, code):
    response = client.post(f"/r/{code}/", {"email": "Grace@Example.com"})
    assert response.status_code == 400
    assert b"You cannot use your own referral code." in response.content
    assert not Referral.objects.exists()


def test_an_unknown_code_gets_a_plain_page(client, referral_program):
    response = client.get("/r/NOSUCHCODE/")
    assert response.status_code == 404 and b"This invitation does not work" in response.content


def test_the_page_speaks_french(client, code):
    response = client.get(f"/r/{code}/", HTTP_ACCEPT_LANGUAGE="fr")
    assert "vous invite" in response.content.decode()


def test_merge_tags_resolve_growth_values_for_a_contact(referral_program, loyalty_program, referrer, marketer):
    code = get_or_create_referral_code(contact=referrer).code
    earn_points_for_order(contact=referrer, order_reference="M-1", amount="1200")
    card = issue_gift_card(actor=marketer, amount="30", recipient=referrer, send_email=False).card
    names = {tag.name for tag in merge_tags()}
    assert {"referral.code", "referral.url", "loyalty.balance", "loyalty.tier", "gift_card.last4"} <= names
    context = contact_context(referrer)
    assert context["referral"]["url"].endswith(f"/r/{code}/")
    assert context["loyalty"] == {"balance": 1200, "tier": "Gold"}
    assert context["gift_card"]["last4"] == card.last4


def test_segment_fields_select_by_tier_points_referrals_and_gift_card_balance(loyalty_program, marketer):
    gold = create_contact(actor=None, email="gold@example.com")
    bronze = create_contact(actor=None, email="bronze@example.com")
    create_contact(actor=None, email="none@example.com")
    earn_points_for_order(contact=gold, order_reference="S-1", amount="1500")
    earn_points_for_order(contact=bronze, order_reference="S-2", amount="50")
    issue_gift_card(actor=marketer, amount="40", recipient=bronze, send_email=False)

    def members(field: str, operator: str, value: str) -> set[str]:
        q = get_segment_field(field).build(Rule(field=field, operator=operator, value=value))
        return set(Contact.objects.filter(q).values_list("email", flat=True))

    assert members("loyalty_tier", "equals", "Gold") == {"gold@example.com"}
    assert members("loyalty_tier", "not_equals", "Gold") == {"bronze@example.com", "none@example.com"}
    assert members("loyalty_points", "gte", "50") == {"gold@example.com", "bronze@example.com"}
    assert members("loyalty_points", "lt", "1") == {"none@example.com"}
    assert members("referrals_rewarded", "eq", "0") == {"gold@example.com", "bronze@example.com", "none@example.com"}
    assert members("gift_card_balance", "gt", "0") == {"bronze@example.com"}


def test_growth_schedules_are_registered_at_their_times():
    funcs = {spec["func"] for spec in SCHEDULES}
    assert {"growth.tasks.process_referrals", "growth.tasks.expire_loyalty_points", "growth.tasks.expire_cards"} <= funcs
    assert FIRST_RUNS["growth: referral rewards"]().hour == 1
    assert FIRST_RUNS["growth: gift card expiry"]().hour == 4


# --- anonymous sign-ups (issue 16, item 17) ------------------------------------------------
def test_a_referral_rejected_by_the_shared_ip_rule_creates_no_contact(client, code, referral_program):
    # given the program's threshold of sign-ups from one IP already reached
    for n in range(referral_program.shared_signup_threshold):
        client.post(f"/r/{code}/", {"email": f"friend{n}@example.org"}, REMOTE_ADDR="203.0.113.40")
    contacts, referrals = Contact.objects.count(), Referral.objects.count()
    # when one more anonymous sign-up comes from there
    response = client.post(f"/r/{code}/", {"email": "one-more@example.org", "first_name": "Eve"}, REMOTE_ADDR="203.0.113.40")
    # then it is refused with a clear message, and nothing was written
    assert response.status_code == 400
    assert b"cannot be accepted" in response.content
    assert (Contact.objects.count(), Referral.objects.count()) == (contacts, referrals)
    assert not Contact.objects.filter(email="one-more@example.org").exists()


def test_anonymous_referral_sign_ups_from_one_ip_are_throttled(client, code, referral_program, settings):
    referral_program.shared_signup_threshold = 1000  # the throttle, not the fraud rule, stops it
    referral_program.save()
    limit = settings.MAILROOM_RATE_LIMITS["referral-signup"][0]
    statuses = [
        client.post(f"/r/{code}/", {"email": f"bulk{n}@example.org"}, REMOTE_ADDR="203.0.113.41").status_code for n in range(limit + 3)
    ]
    assert statuses[:limit] == [200] * limit
    assert statuses[limit:] == [429] * 3
    assert Contact.objects.filter(email__startswith="bulk").count() == limit
    # someone else still signs up
    elsewhere = client.post(f"/r/{code}/", {"email": "other@example.org"}, REMOTE_ADDR="198.51.100.41")
    assert elsewhere.status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "linus\x00@example.org", "first_name": "Linus"},
        {"email": "linus@example.org", "first_name": "Li\x00nus"},
        {"email": "linus@exam\u202eelpmaxe.org", "first_name": "Linus"},
    ],
)
def test_a_public_signup_with_a_nul_or_a_direction_character_is_a_clear_error_and_stores_nothing(client, code, fields):
    """Hostile input on a public form (issue 16): a form error, never a 500 or a half-made contact."""
    before = Contact.objects.count()
    client.get(f"/r/{code}/")
    response = client.post(f"/r/{code}/", fields)
    assert response.status_code == 400
    assert response.context["form"].errors
    assert Contact.objects.count() == before and not Referral.objects.exists()
