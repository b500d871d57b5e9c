"""The contact page as a 360° view (issue 18, item 5): one timeline of messages, consent and
preference changes (messaging), events and orders (marketing), loyalty, gift cards and
referrals (growth), newest first, paged, filtered by kind, each source seen only by the roles
allowed to; the attributes as a key/value table; language and time zone as choices."""

import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from growth.giftcards import issue_gift_card
from growth.loyalty import adjust_points, earn_points_for_order, get_or_create_account
from growth.models import GiftCard, GiftCardTransaction, LoyaltyProgram, LoyaltyTransaction, Referral, ReferralProgram
from growth.referrals import get_or_create_referral_code, sign_up_with_referral
from marketing.events import record_order, track_event
from marketing.models import Event, Order
from messaging.consent import ConsentContext, subscribe
from messaging.contacts import create_contact, erase_contact, update_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import AuditEntry, ConsentRecord, Contact, DeliveryEvent, OutboxMessage
from messaging.preferences import set_marketing_frequency, unsubscribe_from_message
from messaging.timeline import PER_PAGE, contact_timeline, parse_page
from tests.conftest import make_user
from tests.security.test_input_unstorable_text import sqlite_only_legacy_rows

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
ALL_KINDS = {"message", "consent", "preference", "event", "order", "loyalty", "gift_card", "referral"}


@pytest.fixture(autouse=True)
def _sending(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_SENDER_ADDRESS = "Mailroom SAS, 1 rue de la Poste, 75001 Paris"
    settings.MAILROOM_BASE_URL = "http://testserver"


@contextmanager
def minute(n: int):
    with time_machine.travel(START + timedelta(minutes=n), tick=False):
        yield


def page_url(contact: Contact, query: str = "") -> str:
    return f"/admin/messaging/contact/{contact.pk}/change/{query}"


def entries_of(html: str) -> list[str]:
    """The kinds of the timeline rows, top to bottom."""
    return re.findall(r'data-testid="timeline-entry" data-kind="([a-z_]+)"', html)


def section(html: str) -> str:
    """The 360° part of the contact page (attributes and timeline)."""
    return html[html.index('data-testid="contact-360"') :]


@pytest.fixture
def history(contact, newsletter, admin_user):
    """Ada's life, one minute apart: consent, a message she opened (a scanner 'clicked'), an
    event, an order with its points, a gift card, a friend she referred, a frequency change
    and, last, an unsubscribe from the message's link."""
    LoyaltyProgram.objects.create(name="Rewards", points_per_unit=Decimal("1"))
    ReferralProgram.objects.create(name="Invite a friend")
    with minute(0):
        subscribe(actor=None, contact=contact, topic=newsletter)
    with minute(1):
        message = enqueue_message(channel="email", contact=contact, topic=newsletter, subject="Spring news", text="Hello")
        send_due_messages()
    with minute(2):
        DeliveryEvent.objects.create(message=message, kind="opened", occurred_at=timezone.now())
        DeliveryEvent.objects.create(message=message, kind="clicked", is_automated=True, occurred_at=timezone.now())
        track_event(contact=contact, name="viewed_product", properties={"sku": "A1", "tags": ["new"]})
    with minute(3):
        record_order(contact=contact, external_id="ord-1", amount="30.00", status="paid")
    with minute(4):
        earn_points_for_order(contact=contact, order_reference="ord-1", amount="30.00")
    with minute(5):
        issued = issue_gift_card(actor=admin_user, amount="25", recipient=contact, message="Happy birthday Ada", send_email=False)
    with minute(6):
        code = get_or_create_referral_code(contact=contact).code
        sign_up_with_referral(code=code, email="linus@example.org", first_name="Linus")
    with minute(7):
        set_marketing_frequency(actor=None, contact=contact, frequency="weekly", context=ConsentContext(source="preference_center"))
    with minute(8):
        unsubscribe_from_message(message=message, context=ConsentContext(source=ConsentRecord.Source.UNSUBSCRIBE_LINK))
    return {"message": message, "gift_code": issued.code, "card": issued.card}


# --- the merge ----------------------------------------------------------------------------------
def test_the_timeline_holds_every_source_newest_first(history, contact, admin_user):
    timeline = contact_timeline(contact=contact, user=admin_user)
    kinds = [entry.kind for entry in timeline.entries]
    assert kinds == ["consent", "preference", "referral", "gift_card", "loyalty", "order", "event", "message", "consent"]
    assert [entry.when for entry in timeline.entries] == sorted((entry.when for entry in timeline.entries), reverse=True)
    assert not timeline.has_next and not timeline.has_previous
    unsubscribe, *_middle, message, granted = timeline.entries
    assert unsubscribe.title == "Unsubscribed from “Newsletter” by email" and unsubscribe.detail == "via the unsubscribe link"
    assert granted.title == "Subscribed to “Newsletter” by email"
    # the message: its status, opened by a person; the scanner's click does not count as a click
    assert (message.title, message.status) == ("Spring news", "Sent")
    assert [key for key, _label, _variant in message.badges] == ["delivered", "opened", "unsubscribed"]
    order = next(entry for entry in timeline.entries if entry.kind == "order")
    assert order.title == "Order ord-1 · 30.00 EUR" and order.status == "Paid"
    # record_order's own order_paid event is the order: it is not listed twice
    assert [entry.title for entry in timeline.entries if entry.kind == "event"] == ["viewed_product"]


def test_a_human_click_shows_as_clicked(history, contact, admin_user):
    DeliveryEvent.objects.create(message=history["message"], kind="clicked", occurred_at=timezone.now())
    message = contact_timeline(contact=contact, user=admin_user, kind="message").entries[0]
    assert "clicked" in {key for key, _label, _variant in message.badges}


def test_the_contact_page_shows_the_timeline_and_never_a_gift_card_code(client, history, contact, marketer):
    client.force_login(marketer)
    response = client.get(page_url(contact))
    assert response.status_code == 200
    html = section(response.text)
    assert entries_of(html)[0] == "consent" and set(entries_of(html)) == ALL_KINDS
    assert "Spring news" in html and "Order ord-1 · 30.00 EUR" in html and "Unsubscribed from “Newsletter” by email" in html
    assert (
        "Changed how often marketing messages come from “Everything, as it happens” to “Weekly digest only: at most one message a week”"
        in html
    )
    assert "Referred linus@example.org" in html and "Earned +30 points" in html
    card = history["card"]
    assert f"Gift card •••• {card.last4}: Purchase +25.00 EUR" in html
    assert history["gift_code"] not in response.text
    assert history["gift_code"].replace("-", "") not in response.text.replace("-", "")
    assert "Happy birthday" not in html  # the card's message is the sender's words, not a history line
    message_row = re.search(r'<tr[^>]*data-kind="message"[^>]*>', html).group(0)
    assert 'data-opened="true"' in message_row and "data-clicked" not in message_row


# --- roles --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "role, kinds",
    [
        ("Admin", ALL_KINDS),
        ("Marketer", ALL_KINDS),
        ("Ops", ALL_KINDS),
        ("Support", ALL_KINDS),
        # approvers read contacts and their consent, not their messages, orders or rewards
        ("Approver", {"consent", "preference"}),
    ],
)
def test_each_role_sees_the_sources_it_may_read(client, history, contact, role, kinds):
    client.force_login(make_user(role.lower() + "-user", role))
    response = client.get(page_url(contact))
    assert response.status_code == 200
    html = section(response.text)
    assert set(entries_of(html)) == kinds
    assert set(re.findall(r"kind=([a-z_]+)#timeline", html)) == kinds  # the filter offers what the role may see
    if "order" not in kinds:
        assert "ord-1" not in html and "Spring news" not in html and "•••• " not in html
    # asking for a hidden kind shows what the role may see, never the hidden rows
    hidden = client.get(page_url(contact, "?kind=order"))
    assert set(entries_of(section(hidden.text))) == ({"order"} if "order" in kinds else kinds)


def test_anonymous_is_sent_to_the_login_page_and_a_staff_member_without_a_role_is_refused(client, history, contact):
    response = client.get(page_url(contact))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    client.force_login(make_user("nobody"))
    assert client.get(page_url(contact)).status_code == 403


# --- paging, filtering, queries ------------------------------------------------------------------
def add_events(contact: Contact, count: int, *, start: datetime = START) -> None:
    Event.objects.bulk_create(
        Event(contact=contact, name=f"step_{i:03d}", occurred_at=start - timedelta(minutes=i), properties={}) for i in range(count)
    )


def test_pages_of_fifty_cover_everything_once_newest_first(client, contact, admin_user):
    add_events(contact, 120)
    client.force_login(admin_user)
    seen = []
    for number in (1, 2, 3):
        response = client.get(page_url(contact, f"?page={number}"))
        timeline = response.context["timeline"]
        assert timeline.page == number
        seen += [entry.title for entry in timeline.entries]
        assert len(timeline.entries) == (PER_PAGE if number < 3 else 20)
        assert timeline.has_next == (number < 3)
        assert ('data-testid="timeline-older"' in response.text) == (number < 3)
        assert ('data-testid="timeline-newer"' in response.text) == (number > 1)
    assert seen == [f"step_{i:03d}" for i in range(120)]


def test_the_kind_filter_keeps_one_kind_and_bad_parameters_fall_back(client, history, contact, admin_user):
    client.force_login(admin_user)
    only_orders = client.get(page_url(contact, "?kind=order"))
    assert entries_of(section(only_orders.text)) == ["order"]
    assert only_orders.context["timeline"].kind == "order"
    for query in ("?kind=nonsense", "?kind=%3Cscript%3E", "?page=abc", "?page=-4", "?page=99999999999999999999"):
        response = client.get(page_url(contact, query))
        assert response.status_code == 200, query
        assert set(entries_of(section(response.text))) == ALL_KINDS or response.context["timeline"].page > 1, query
        assert "<script>" not in section(response.text)
    assert parse_page("abc") == 1 and parse_page("-4") == 1 and parse_page("3") == 3 and parse_page("10**9") == 1


def bulk_history(contact: Contact, newsletter, n: int) -> None:
    """n more entries of every kind, written in bulk (the page must not care how many)."""
    now = timezone.now()
    messages = OutboxMessage.objects.bulk_create(
        OutboxMessage(channel="email", contact=contact, to_address=contact.email, subject=f"Bulk {i}", status="sent", next_attempt_at=now)
        for i in range(n)
    )
    DeliveryEvent.objects.bulk_create(DeliveryEvent(message=m, kind=k, occurred_at=now) for m in messages for k in ("opened", "clicked"))
    ConsentRecord.objects.bulk_create(
        ConsentRecord(contact=contact, topic=newsletter, channel="email", action=action, source="console")
        for i in range(n)
        for action in ("granted", "frequency")
    )
    add_events(contact, n)
    Order.objects.bulk_create(Order(contact=contact, external_id=f"bulk-{i}", amount=1, placed_at=now) for i in range(n))
    account = get_or_create_account(contact=contact)
    LoyaltyTransaction.objects.bulk_create(
        LoyaltyTransaction(account=account, kind="adjusted", points=1, balance_after=i + 1) for i in range(n)
    )
    card = GiftCard.objects.create(code_hash=f"h{n}", last4="ABCD", initial_amount=n, balance=n, recipient=contact)
    GiftCardTransaction.objects.bulk_create(
        GiftCardTransaction(card=card, kind="purchase", amount=1, balance_after=i + 1, idempotency_key=f"bulk-{n}-{i}") for i in range(n)
    )
    program = ReferralProgram.objects.first()
    code = get_or_create_referral_code(contact=contact, program=program)
    friends = Contact.objects.bulk_create(Contact(email=f"friend{n}-{i}@example.org") for i in range(n))
    Referral.objects.bulk_create(Referral(program=program, code=code, referrer=contact, friend=friend) for friend in friends)


def test_queries_per_page_do_not_grow_with_the_history(client, history, contact, newsletter, admin_user, django_assert_max_num_queries):
    client.force_login(admin_user)
    client.get(page_url(contact))  # warm the per-process caches (site settings, content types)
    with CaptureQueriesContext(connection) as small:
        assert client.get(page_url(contact)).status_code == 200
    bulk_history(contact, newsletter, 60)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(page_url(contact))
    assert len(response.context["timeline"].entries) == PER_PAGE
    with django_assert_max_num_queries(len(small.captured_queries)):
        deeper = client.get(page_url(contact, "?page=5"))
    assert len(deeper.context["timeline"].entries) == PER_PAGE


# --- erasure ----------------------------------------------------------------------------------------
def test_an_erased_contact_shows_no_personal_data_in_the_timeline(client, history, contact, admin_user):
    account = get_or_create_account(contact=contact)

    adjust_points(account=account, points=5, reason="Goodwill for Ada Lovelace", actor=admin_user)
    update_contact(actor=admin_user, contact=contact, last_name="Lovelace", phone="+33612345678", attributes={"nickname": "Countess"})
    client.force_login(admin_user)
    before = section(client.get(page_url(contact)).text)
    assert "Goodwill for Ada Lovelace" in before and "Countess" in before

    erase_contact(actor=admin_user, contact=Contact.objects.get(pk=contact.pk))

    response = client.get(page_url(contact))
    assert response.status_code == 200
    html = section(response.text)
    assert set(entries_of(html)) == ALL_KINDS  # the history stays, as counts and kinds
    for personal in ("ada@example.com", "Ada", "Lovelace", "+33612345678", "33612345678", "Countess", "Spring news", "Happy birthday"):
        assert personal not in html, personal
    assert "ada@example.com" not in response.text and "Lovelace" not in response.text
    assert "Email message" in html  # the message is still there, without its subject
    assert "No attributes." in html


# --- the attributes table -----------------------------------------------------------------------------
def test_attributes_are_an_escaped_key_value_table_with_nested_values_as_json(client, admin_user):
    hostile = '<script>alert("x")</script>'
    person = create_contact(
        actor=None, email="kv@example.com", attributes={"plan": "gold", hostile: hostile, "nested": {"b": [1, 2], "a": None}, "vip": True}
    )
    client.force_login(admin_user)
    response = client.get(page_url(person))
    assert response.context["attribute_rows"] == [  # keys sorted
        (hostile, hostile),
        ("nested", '{"a":null,"b":[1,2]}'),
        ("plan", "gold"),
        ("vip", "true"),
    ]
    html = section(response.text)
    assert html.count('data-testid="attribute-row"') == 4
    assert hostile not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "{&quot;a&quot;:null,&quot;b&quot;:[1,2]}" in html


# --- language and time zone as choices ------------------------------------------------------------------
def post_contact(client, contact: Contact, **changes) -> object:
    data = {
        "email": contact.email or "",
        "phone": contact.phone or "",
        "external_id": contact.external_id or "",
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "locale": contact.locale,
        "timezone": contact.timezone,
        "attributes": "{}",
        "push_tokens": "[]",
        "subscriptions-TOTAL_FORMS": "0",
        "subscriptions-INITIAL_FORMS": "0",
        **changes,
    }
    return client.post(page_url(contact), data)


def test_language_and_time_zone_are_choices(client, contact, admin_user):
    client.force_login(admin_user)
    form = client.get(page_url(contact)).context["adminform"].form
    assert [code for code, _label in form.fields["locale"].choices] == ["en", "fr"]
    zones = [name for name, _label in form.fields["timezone"].choices]
    assert "Europe/Paris" in zones and "Asia/Tokyo" in zones and zones == sorted(zones)
    html = client.get(page_url(contact)).text
    assert re.search(r'<option value="Europe/Paris" selected>', html) and re.search(r'<option value="fr" selected>', html)

    response = post_contact(client, contact, timezone="Asia/Tokyo", locale="en")
    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.timezone, contact.locale) == ("Asia/Tokyo", "en")
    entry = AuditEntry.objects.filter(verb="updated", target_id=str(contact.pk)).latest("pk")
    assert entry.changes["timezone"] == {"before": "Europe/Paris", "after": "Asia/Tokyo"} and entry.actor == admin_user


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("timezone", "Mars/Olympus", "“Mars/Olympus” is not a known time zone (e.g. Europe/Paris)."),
        ("timezone", "", "This field is required."),
        ("locale", "de", "“de” is not a supported language."),
        ("locale", "<b>x</b>", "“&lt;b&gt;x&lt;/b&gt;” is not a supported language."),
    ],
)
def test_a_crafted_language_or_time_zone_is_refused_clearly_and_nothing_changes(client, contact, admin_user, field, value, message):
    client.force_login(admin_user)
    audits = AuditEntry.objects.count()
    response = post_contact(client, contact, first_name="Changed", **{field: value})
    assert response.status_code == 200  # the form again
    assert field in response.context["adminform"].form.errors
    assert message in response.text
    contact.refresh_from_db()
    assert (contact.first_name, contact.locale, contact.timezone) == ("Ada", "fr", "Europe/Paris")
    assert AuditEntry.objects.count() == audits


def test_a_new_contact_starts_in_english_and_utc(client, admin_user):
    client.force_login(admin_user)
    form = client.get("/admin/messaging/contact/add/").context["adminform"].form
    assert (form["locale"].value(), form["timezone"].value()) == ("en", "UTC")


def test_a_legacy_row_with_a_lone_surrogate_shows_a_replacement_character(client, contact, admin_user):
    sqlite_only_legacy_rows()
    # given rows written before input was checked (straight to the database)
    Event.objects.create(contact=contact, name="legacy", properties={"k": "\ud800"}, occurred_at=timezone.now())
    Contact.objects.filter(pk=contact.pk).update(attributes={"\udfff": "x"})
    client.force_login(admin_user)
    response = client.get(page_url(contact))
    assert response.status_code == 200
    html = section(response.content.decode())
    assert '{"k":"\ufffd"}'.replace('"', "&quot;") in html and "\ufffd</th>" in html
