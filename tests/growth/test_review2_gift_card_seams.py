"""Issue 16, item 14 across the seams (review): the per-customer lockout must not become a
way round the lockout. A hostile API key naming a new `customer` on every guess got five
fresh bad codes (and a fresh per-minute allowance) each time: unlimited guessing."""

from decimal import Decimal

import pytest

from growth.giftcards import issue_gift_card
from growth.models import GiftCard

pytestmark = pytest.mark.django_db
URL = "/api/v1/gift-cards/redeem/"


def guess(n: int) -> dict:
    return {"code": f"ABCD-EFGH-JKLM-{n:04d}", "amount": "1.00", "idempotency_key": f"guess-{n}", "customer": f"made-up-{n}"}


def test_hostile_key_cannot_guess_codes_without_limit_by_naming_a_new_customer_each_time(key_client, marketer, settings):
    settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CLIENT = 30
    card = issue_gift_card(actor=marketer, amount="50.00")
    hostile = key_client("Support", name="hostile")
    # when one key sends 40 wrong codes within a minute, each for a customer never seen before
    answers = [hostile.post(URL, guess(n), format="json").status_code for n in range(40)]
    # then it is refused once the key's per-minute allowance of wrong codes is spent
    assert answers[:30] == [404] * 30
    assert set(answers[30:]) == {429}
    # and the right code, even for yet another customer, waits too
    right = {"code": card.code, "amount": "1.00", "idempotency_key": "right", "customer": "another"}
    assert hostile.post(URL, right, format="json").status_code == 429
    assert GiftCard.objects.get(pk=card.card.pk).balance == Decimal("50.00")


def test_a_busy_shop_redeeming_right_codes_for_many_customers_is_not_slowed(key_client, marketer, settings):
    settings.MAILROOM_GIFT_CARD_ATTEMPTS_PER_MINUTE_CLIENT = 30
    cards = [issue_gift_card(actor=marketer, amount="5.00") for _ in range(35)]
    shop = key_client("Support", name="shop")
    for n, card in enumerate(cards):
        payload = {"code": card.code, "amount": "1.00", "idempotency_key": f"ok-{n}", "customer": f"c{n}"}
        assert shop.post(URL, payload, format="json").status_code == 201
