"""A contact's growth summary: the points ledger and the ledger of the gift cards they
received as django-tables2 tables (sort, bad keys, paging, safe CSV, roles, query counts)."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from growth.giftcards import issue_gift_card
from growth.loyalty import adjust_points, earn_points_for_order
from growth.models import GiftCardTransaction, LoyaltyAccount, LoyaltyTransaction
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
EVIL = "@SUM(1+1)*cmd|' /C calc'!A0"


@pytest.fixture
def member(contact, loyalty_program, support):
    """120 points earned, then +30 and -50 by hand (one reason is a formula), each a day apart."""
    earn_points_for_order(contact=contact, order_reference="A-1", amount="120")
    account = LoyaltyAccount.objects.get(contact=contact)
    adjust_points(account=account, points=30, reason=EVIL, actor=support)
    adjust_points(account=account, points=-50, reason="Typo", actor=support)
    now = timezone.now()
    for days, entry in zip((3, 2, 1), LoyaltyTransaction.objects.filter(account=account).order_by("id"), strict=True):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {LoyaltyTransaction._meta.db_table} SET created_at = %s WHERE id = %s", [now - timedelta(days=days), entry.pk]
            )
    return contact


def summary_url(contact) -> str:
    return f"/admin/growth/customers/{contact.pk}/"


def points_in_order(page: str) -> list[str]:
    """The Points cells of the points ledger, top to bottom."""
    from lxml import html

    table = html.fromstring(page).xpath('//table[@data-testid="ledger"]')[0]
    return [tr.xpath("./td")[2].text_content().strip() for tr in table.xpath('./tbody/tr[@data-testid="ledger-row"]')]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ["-50", "30", "120"]),  # newest first
        ("created_at", ["120", "30", "-50"]),
        ("-created_at", ["-50", "30", "120"]),
        ("kind", ["-50", "30", "120"]),  # adjusted (newest first, as the default), then earned
        ("-kind", ["120", "30", "-50"]),
        ("points", ["-50", "30", "120"]),
        ("-points", ["120", "30", "-50"]),
        ("reason", ["-50", "30", "120"]),  # not sortable: ignored
        ("actor__password", ["-50", "30", "120"]),  # not a column: ignored
    ],
)
def test_the_points_ledger_sorts_by_each_sortable_column(client, marketer, member, sort, expected):
    client.force_login(marketer)
    response = client.get(summary_url(member), {"points-sort": sort} if sort else {})
    assert response.status_code == 200
    assert points_in_order(response.content.decode()) == expected


def test_the_gift_card_ledger_lists_the_cards_received_and_sorts(client, marketer, member):
    small = issue_gift_card(actor=marketer, amount="10.00", recipient=member, send_email=False).card
    big = issue_gift_card(actor=marketer, amount="75.00", recipient=member, send_email=False).card
    issue_gift_card(actor=marketer, amount="99.00", send_email=False)  # someone else's
    client.force_login(marketer)
    page = client.get(summary_url(member), {"cards-sort": "-amount"}).content.decode()
    assert page.count('data-testid="gift-card-ledger-row"') == 2 and "99.00" not in page
    page = page[page.index('data-testid="gift-card-ledger"') :]
    assert page.index(f"•••• {big.last4}") < page.index(f"•••• {small.last4}")
    page = client.get(summary_url(member), {"cards-sort": "amount"}).content.decode()
    page = page[page.index('data-testid="gift-card-ledger"') :]
    assert page.index(f"•••• {small.last4}") < page.index(f"•••• {big.last4}")
    rows = list(
        csv.DictReader(io.StringIO(client.get(summary_url(member), {"cards-_export": "csv", "cards-sort": "amount"}).content.decode()))
    )
    assert [(row["Amount"], row["Kind"], row["Currency"]) for row in rows] == [("10.00", "purchase", "EUR"), ("75.00", "purchase", "EUR")]


def test_the_points_ledger_pages_by_fifty(client, marketer, support, member):
    account = LoyaltyAccount.objects.get(contact=member)
    for n in range(60):
        adjust_points(account=account, points=1, reason=f"r{n}", actor=support)
    client.force_login(marketer)
    assert len(points_in_order(client.get(summary_url(member)).content.decode())) == 50
    last = client.get(summary_url(member), {"points-page": "99"}).content.decode()
    assert len(points_in_order(last)) == 13 and "Page 2 of 2 (63 entries)" in last


def test_the_points_ledger_exports_with_formulas_neutralised(client, marketer, member):
    client.force_login(marketer)
    response = client.get(summary_url(member), {"points-_export": "csv", "points-sort": "points"})
    assert response["Content-Type"].startswith("text/csv") and f"contact-{member.pk}-points-ledger.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["When", "Kind", "Points", "Balance after", "Order", "Reason", "By"]
    assert [(row[2], row[5]) for row in rows[1:]] == [("-50", "Typo"), ("30", "'" + EVIL), ("120", "")]
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "@")]


def test_roles_that_cannot_read_a_ledger_cannot_export_it(client, approver, member):
    # an approver has no growth pages at all
    client.force_login(approver)
    for param in ("points-_export", "cards-_export"):
        response = client.get(summary_url(member), {param: "csv"})
        assert response.status_code == 403 and b"Typo" not in response.content
    # someone who may look up customers but not read their ledgers sees neither, exports neither
    clerk = make_user("clerk")
    clerk.user_permissions.add(Permission.objects.get(codename="view_loyaltyaccount"))
    client.force_login(clerk)
    page = client.get(summary_url(member))
    assert page.status_code == 200 and b'data-testid="ledger"' not in page.content and b"Typo" not in page.content
    for param in ("points-_export", "cards-_export"):
        assert client.get(summary_url(member), {param: "csv"}).status_code == 403


def test_the_summary_queries_do_not_grow_with_ledger_rows(client, marketer, support, member, django_assert_max_num_queries):
    client.force_login(marketer)
    issue_gift_card(actor=marketer, amount="10.00", recipient=member, send_email=False)
    with CaptureQueriesContext(connection) as few:
        client.get(summary_url(member))
    account = LoyaltyAccount.objects.get(contact=member)
    for n in range(55):
        adjust_points(account=account, points=1, reason=f"r{n}", actor=support if n % 2 else marketer)
    for _n in range(5):
        issue_gift_card(actor=marketer, amount="5.00", recipient=member, send_email=False)
    assert GiftCardTransaction.objects.filter(card__recipient=member).count() == 6
    with django_assert_max_num_queries(len(few)):
        assert len(points_in_order(client.get(summary_url(member)).content.decode())) == 50
    with django_assert_max_num_queries(len(few)):
        client.get(summary_url(member), {"points-_export": "csv"})
