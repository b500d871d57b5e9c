"""The segment rule compiler, segment actions and the materialised refresh."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.events import record_order, track_event
from marketing.models import Segment, SegmentMember
from marketing.segments.actions import (
    add_static_members,
    create_segment,
    duplicate_segment,
    preview_rules,
    refresh_segment,
    segment_contacts,
    update_segment,
)
from marketing.segments.compiler import SegmentRuleError, contacts_matching
from marketing.segments.fields import registry
from marketing.segments.fields.registry import SegmentField, register_segment_field, segment_fields
from messaging.consent import subscribe, unsubscribe
from messaging.contacts import create_contact, delete_contact
from messaging.models import AuditEntry, DeliveryEvent, OutboxMessage


def group(op, *rules):
    return {"type": "group", "op": op, "rules": list(rules)}


def rule(field, operator, value="", **extra):
    return {"type": "rule", "field": field, "operator": operator, "value": value, **extra}


def emails(tree):
    return sorted(contacts_matching(tree).values_list("email", flat=True))


@pytest.fixture
def people(db):
    make = lambda email, **fields: create_contact(actor=None, email=email, **fields)  # noqa: E731
    return {
        "ada": make(
            "ada@example.com",
            first_name="Ada",
            locale="fr",
            timezone="Europe/Paris",
            attributes={"lifecycle_stage": "customer", "tags": ["vip", "beta"], "score": 42},
        ),
        "bob": make("bob@shop.test", first_name="Bob", locale="en", attributes={"lifecycle_stage": "lead", "tags": ["beta"], "score": "7"}),
        "cy": make("cy@example.com", first_name="Cy", locale="en", attributes={}),
    }


# --- contact fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tree, expected",
    [
        (rule("email", "equals", "ADA@example.com"), ["ada@example.com"]),
        (rule("email", "not_equals", "ada@example.com"), ["bob@shop.test", "cy@example.com"]),
        (rule("email", "contains", "example"), ["ada@example.com", "cy@example.com"]),
        (rule("email", "not_contains", "example"), ["bob@shop.test"]),
        (rule("email", "starts_with", "bo"), ["bob@shop.test"]),
        (rule("email", "ends_with", ".test"), ["bob@shop.test"]),
        (rule("first_name", "in", "Ada, Cy"), ["ada@example.com", "cy@example.com"]),
        (rule("phone", "is_not_set"), ["ada@example.com", "bob@shop.test", "cy@example.com"]),
        (rule("phone", "is_set"), []),
        (rule("locale", "equals", "fr"), ["ada@example.com"]),
        (rule("locale", "not_in", "fr"), ["bob@shop.test", "cy@example.com"]),
        (rule("created_at", "in_last_days", "1"), ["ada@example.com", "bob@shop.test", "cy@example.com"]),
        (rule("created_at", "not_in_last_days", "1"), []),
    ],
)
def test_contact_field_operators(people, tree, expected):
    # given three contacts / when one rule is compiled / then exactly the expected match
    assert emails(group("and", tree)) == expected


@pytest.mark.parametrize(
    "tree, expected",
    [
        (rule("attribute", "equals", "customer", key="lifecycle_stage"), ["ada@example.com"]),
        (rule("attribute", "not_equals", "customer", key="lifecycle_stage"), ["bob@shop.test", "cy@example.com"]),
        (rule("attribute", "in", "lead,customer", key="lifecycle_stage"), ["ada@example.com", "bob@shop.test"]),
        (rule("attribute", "includes", "vip", key="tags"), ["ada@example.com"]),
        (rule("attribute", "includes", "beta", key="tags"), ["ada@example.com", "bob@shop.test"]),
        (rule("attribute", "not_includes", "vip", key="tags"), ["bob@shop.test", "cy@example.com"]),
        (rule("attribute", "gte", "40", key="score"), ["ada@example.com"]),
        (rule("attribute", "lt", "10", key="score"), ["bob@shop.test"]),
        (rule("attribute", "gt", "0", key="lifecycle_stage"), []),
        (rule("attribute", "equals", "42", key="score"), ["ada@example.com"]),
        (rule("attribute", "equals", "7", key="score"), ["bob@shop.test"]),
        (rule("attribute", "is_set", key="tags"), ["ada@example.com", "bob@shop.test"]),
        (rule("attribute", "is_not_set", key="tags"), ["cy@example.com"]),
        (rule("attribute", "contains", "cust", key="lifecycle_stage"), ["ada@example.com"]),
    ],
)
def test_attribute_operators(people, tree, expected):
    assert emails(group("and", tree)) == expected


def test_subscription_rule_follows_consent(people, newsletter):
    # given Ada subscribed and Bob subscribed then unsubscribed
    subscribe(actor=None, contact=people["ada"], topic=newsletter)
    subscribe(actor=None, contact=people["bob"], topic=newsletter)
    unsubscribe(actor=None, contact=people["bob"], topic=newsletter)
    # then only Ada is subscribed, and the others are "not subscribed"
    assert emails(group("and", rule("subscribed", "is_subscribed", key="newsletter", channel="email"))) == ["ada@example.com"]
    assert emails(group("and", rule("subscribed", "is_not_subscribed", key="newsletter"))) == ["bob@shop.test", "cy@example.com"]
    # and a subscription on another channel does not count
    assert emails(group("and", rule("subscribed", "is_subscribed", key="newsletter", channel="sms"))) == []


def test_event_rules_with_window_and_count(people):
    now = timezone.now()
    track_event(contact=people["ada"], name="lesson_completed", occurred_at=now - timedelta(days=2))
    track_event(contact=people["ada"], name="lesson_completed", occurred_at=now - timedelta(days=3))
    track_event(contact=people["bob"], name="lesson_completed", occurred_at=now - timedelta(days=40))
    assert emails(group("and", rule("event", "did", key="lesson_completed"))) == ["ada@example.com", "bob@shop.test"]
    assert emails(group("and", rule("event", "did", key="lesson_completed", days="30"))) == ["ada@example.com"]
    assert emails(group("and", rule("event", "did_not", key="lesson_completed", days="30"))) == ["bob@shop.test", "cy@example.com"]
    assert emails(group("and", rule("event", "count_at_least", "2", key="lesson_completed"))) == ["ada@example.com"]
    assert emails(group("and", rule("event", "count_at_least", "1", key="lesson_completed", days="30"))) == ["ada@example.com"]


def test_order_rules_count_only_revenue(people):
    record_order(contact=people["ada"], external_id="A1", amount="30", status="paid")
    record_order(contact=people["ada"], external_id="A2", amount="80.50", status="fulfilled")
    record_order(contact=people["bob"], external_id="B1", amount="500", status="refunded")
    assert emails(group("and", rule("order_count", "gte", "2"))) == ["ada@example.com"]
    assert emails(group("and", rule("order_count", "eq", "0"))) == ["bob@shop.test", "cy@example.com"]
    assert emails(group("and", rule("lifetime_value", "gt", "110"))) == ["ada@example.com"]
    assert emails(group("and", rule("lifetime_value", "lt", "100"))) == ["bob@shop.test", "cy@example.com"]
    assert emails(group("and", rule("last_order", "in_last_days", "7"))) == ["ada@example.com"]
    assert emails(group("and", rule("last_order", "is_not_set"))) == ["bob@shop.test", "cy@example.com"]
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert emails(group("and", rule("last_order", "before", tomorrow))) == ["ada@example.com"]


@pytest.mark.parametrize(
    "operator, value, expected",
    [
        ("eq", "2", ["ada"]),
        ("eq", "0", ["cy"]),
        ("ne", "0", ["ada", "bob"]),
        ("ne", "2", ["bob", "cy"]),
        ("gt", "0", ["ada", "bob"]),
        ("gte", "2", ["ada"]),
        ("lt", "2", ["bob", "cy"]),
        ("lte", "1", ["bob", "cy"]),
        ("lt", "0", []),
        ("gte", "0", ["ada", "bob", "cy"]),
    ],
)
def test_order_count_comparisons_include_contacts_without_orders(people, operator, value, expected):
    # given Ada with two paid orders, Bob with one, Cy with none (Bob's second was refunded)
    record_order(contact=people["ada"], external_id="A1", amount="30", status="paid")
    record_order(contact=people["ada"], external_id="A2", amount="30", status="paid")
    record_order(contact=people["bob"], external_id="B1", amount="30", status="paid")
    record_order(contact=people["bob"], external_id="B2", amount="30", status="refunded")
    expected = sorted({"ada": "ada@example.com", "bob": "bob@shop.test", "cy": "cy@example.com"}[name] for name in expected)
    assert emails(group("and", rule("order_count", operator, value))) == expected


def test_engagement_rules(people):
    message = OutboxMessage.objects.create(
        channel="email", contact=people["cy"], to_address="cy@example.com", status="sent", next_attempt_at=timezone.now()
    )
    DeliveryEvent.objects.create(message=message, kind="opened", occurred_at=timezone.now() - timedelta(days=1))
    assert emails(group("and", rule("opened", "in_last_days", "7"))) == ["cy@example.com"]
    assert emails(group("and", rule("clicked", "in_last_days", "7"))) == []
    assert emails(group("and", rule("opened", "not_in_last_days", "7"))) == ["ada@example.com", "bob@shop.test"]


def test_seed_003_criteria_nested_groups(people):
    # lifecycle_stage = customer AND tags includes vip AND (min_order_count 1 OR min_ltv 100)
    record_order(contact=people["ada"], external_id="A1", amount="150", status="paid")
    tree = group(
        "and",
        rule("attribute", "equals", "customer", key="lifecycle_stage"),
        rule("attribute", "includes", "vip", key="tags"),
        group("or", rule("order_count", "gte", "1"), rule("lifetime_value", "gte", "100")),
    )
    assert emails(tree) == ["ada@example.com"]
    either = group(
        "or", rule("first_name", "equals", "Cy"), group("and", rule("locale", "equals", "en"), rule("email", "contains", "shop"))
    )
    assert emails(either) == ["bob@shop.test", "cy@example.com"]


def test_empty_group_matches_every_live_contact(people):
    delete_contact(actor=None, contact=people["cy"])
    assert emails(group("and")) == ["ada@example.com", "bob@shop.test"]


def test_registered_field_from_another_app(people):
    # given a field registered the way growth registers loyalty tier
    register_segment_field(
        SegmentField(
            "test_vip",
            "VIP",
            "Growth",
            ("is_set",),
            lambda r: __import__("django.db.models").db.models.Q(attributes__tags__icontains="vip"),
        )
    )
    try:
        assert emails(group("and", rule("test_vip", "is_set"))) == ["ada@example.com"]
    finally:
        segment_fields()  # the registry is a module dict; remove the test field
        registry._registry.pop("test_vip")


@pytest.mark.parametrize(
    "tree, message",
    [
        (group("and", rule("shoe_size", "equals", "42")), "Rule 1: unknown field “shoe_size”."),
        (group("and", rule("email", "gt", "3")), "Rule 1: “gt” does not apply to Email"),
        (group("and", rule("email", "equals", "a"), group("or", rule("order_count", "gte", "many"))), "Rule 2.1: “many” is not a number."),
        (group("and", rule("attribute", "equals", "x", key="bad key;")), "Rule 1: “bad key;” is not an attribute name"),
        (group("and", rule("attribute", "equals", "x")), "Rule 1: Attribute needs a attribute name."),
        (group("and", rule("email", "equals", "")), "Rule 1: Email is needs a value."),
        (group("and", rule("created_at", "in_last_days", "0")), "Rule 1: The number of days must be between 1 and 3650."),
        (group("and", rule("last_order", "before", "31/12/2024")), "Rule 1: “31/12/2024” is not a date (YYYY-MM-DD)."),
        (group("and", rule("subscribed", "is_subscribed", key="nope")), "Rule 1: There is no topic “nope”."),
        (group("xor", rule("email", "is_set")), "Rule 1: a group combines its rules with “and” or “or”, not “xor”."),
        (group("and", rule("event", "count_at_least", "1.5", key="x")), "Rule 1: The count must be a whole number of at least 1."),
        (
            group("and", {"type": "rule", "field": "email", "operator": "equals", "value": {"$ne": 1}}),
            "Rule 1: rule values must be text or numbers.",
        ),
        ([], "Rule 1: a group was expected."),
    ],
)
def test_bad_rules_are_rejected_naming_the_rule(people, tree, message):
    with pytest.raises(SegmentRuleError) as error:
        contacts_matching(tree)
    assert str(error.value).startswith(message)


def test_deep_nesting_is_refused(people):
    tree = group("and", group("and", group("and", group("and", group("and", rule("email", "is_set"))))))
    with pytest.raises(SegmentRuleError, match="nested at most"):
        contacts_matching(tree)


def test_sql_shaped_values_are_just_values(people):
    tree = group("or", rule("email", "equals", "' OR 1=1 --"), rule("attribute", "includes", "x') OR 1=1 --", key="tags"))
    assert emails(tree) == []


# --- actions -----------------------------------------------------------------------------


def test_bad_rules_change_nothing_on_update(people, marketer):
    segment = create_segment(
        name="Customers", actor=marketer, rules=group("and", rule("attribute", "equals", "customer", key="lifecycle_stage"))
    )
    with pytest.raises(SegmentRuleError):
        update_segment(segment=segment, actor=marketer, name="Renamed", rules=group("and", rule("nope", "equals", "1")))
    segment.refresh_from_db()
    assert segment.name == "Customers"
    assert segment.rules["rules"][0]["field"] == "attribute"
    assert not AuditEntry.objects.filter(verb="changed").exists()


def test_duplicate_name_is_refused(people, marketer):
    create_segment(name="VIP", actor=marketer)
    with pytest.raises(Exception, match="already exists"):
        create_segment(name="vip", actor=marketer)


def test_refresh_materialises_members_and_follows_changes(people, marketer):
    # given a dynamic segment of beta testers
    segment = create_segment(name="Beta", actor=marketer, rules=group("and", rule("attribute", "includes", "beta", key="tags")))
    # when it is refreshed
    refresh_segment(segment=segment, actor=marketer)
    segment.refresh_from_db()
    # then its members are the matching contacts, with the count and time recorded
    assert sorted(segment_contacts(segment=segment).values_list("email", flat=True)) == ["ada@example.com", "bob@shop.test"]
    assert segment.member_count == 2 and segment.refreshed_at is not None
    # when Bob leaves the beta and Cy joins, then a refresh swaps them without duplicates
    people["bob"].attributes = {"tags": []}
    people["bob"].save()
    people["cy"].attributes = {"tags": ["beta"]}
    people["cy"].save()
    refresh_segment(segment=segment, actor=None)
    refresh_segment(segment=segment, actor=None)
    assert sorted(segment_contacts(segment=segment).values_list("email", flat=True)) == ["ada@example.com", "cy@example.com"]
    assert SegmentMember.objects.filter(segment=segment).count() == 2
    assert AuditEntry.objects.filter(verb="refreshed", target_id=str(segment.pk)).count() == 3


def test_preview_counts_and_samples(people):
    preview = preview_rules(rules=group("and", rule("email", "contains", "example")))
    assert preview.count == 2
    assert {c.email for c in preview.sample} == {"ada@example.com", "cy@example.com"}


def test_static_segment_members_by_identifier(people, marketer):
    segment = create_segment(name="Hand picked", actor=marketer, kind=Segment.Kind.STATIC)
    added, unknown = add_static_members(
        segment=segment, identifiers=["ADA@example.com", "ghost@example.com", "not an email@", ""], actor=marketer
    )
    assert added == 1 and unknown == ["ghost@example.com", "not an email@"]
    added_again, _ = add_static_members(segment=segment, identifiers=["ada@example.com", "bob@shop.test"], actor=marketer)
    assert added_again == 1
    segment.refresh_from_db()
    assert segment.member_count == 2
    copy = duplicate_segment(segment=segment, actor=marketer)
    assert copy.name == "Hand picked (copy)" and copy.member_count == 2


def test_static_segment_refuses_rules_and_dynamic_refuses_members(people, marketer):
    static = create_segment(name="S", actor=marketer, kind=Segment.Kind.STATIC)
    with pytest.raises(Exception, match="members, not rules"):
        update_segment(segment=static, actor=marketer, rules=group("and"))
    dynamic = create_segment(name="D", actor=marketer)
    with pytest.raises(Exception, match="static segments only"):
        add_static_members(segment=dynamic, identifiers=["ada@example.com"], actor=marketer)
    assert not SegmentMember.objects.exists()


def test_track_event_is_idempotent(people):
    first, created = track_event(contact=people["ada"], name="order_paid", idempotency_key="k1")
    again, created_again = track_event(contact=people["ada"], name="order_paid", idempotency_key="k1")
    assert created and not created_again and first.pk == again.pk


def test_order_status_change_records_one_event_each(people):
    record_order(contact=people["ada"], external_id="O1", amount="10", status="pending")
    record_order(contact=people["ada"], external_id="O1", amount="10", status="paid")
    record_order(contact=people["ada"], external_id="O1", amount="10", status="paid")
    assert list(people["ada"].events.order_by("id").values_list("name", flat=True)) == ["order_pending", "order_paid"]
