"""The `Q` builders segment fields share: text, choice and date columns, per-contact
aggregates (`aggregate_q`, which growth uses too), consent, events, orders and engagement.
Every joined rule is one non-correlated subquery (`members_of`)."""

import operator
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from marketing.models import Event, Order
from marketing.segments.fields.parsers import days_ago, parse_date, parse_days, parse_list, parse_number, require_text
from marketing.segments.fields.registry import Rule, RuleValueError
from messaging.models import Channel, DeliveryEvent, Subscription, Topic


def text_q(column: str, rule: Rule) -> Q:
    op = rule.operator
    if op == "is_set":
        return Q(**{f"{column}__isnull": False}) & ~Q(**{column: ""})
    if op == "is_not_set":
        return Q(**{f"{column}__isnull": True}) | Q(**{column: ""})
    if op == "in":
        return Q(**{f"{column}__in": parse_list(rule.value)})
    value = require_text(rule.value)
    lookups = {
        "equals": "iexact",
        "not_equals": "iexact",
        "contains": "icontains",
        "not_contains": "icontains",
        "starts_with": "istartswith",
        "ends_with": "iendswith",
    }
    q = Q(**{f"{column}__{lookups[op]}": value})
    return ~q if op.startswith("not_") else q


def choice_q(column: str, rule: Rule) -> Q:
    op = rule.operator
    if op in ("in", "not_in"):
        q = Q(**{f"{column}__in": parse_list(rule.value)})
    else:
        q = Q(**{column: require_text(rule.value)})
    return ~q if op.startswith("not_") else q


def date_q(column: str, rule: Rule) -> Q:
    op = rule.operator
    if op == "is_set":
        return Q(**{f"{column}__isnull": False})
    if op == "is_not_set":
        return Q(**{f"{column}__isnull": True})
    if op == "in_last_days":
        return Q(**{f"{column}__gte": days_ago(parse_days(rule.value))})
    if op == "not_in_last_days":
        return Q(**{f"{column}__lt": days_ago(parse_days(rule.value))}) | Q(**{f"{column}__isnull": True})
    moment = parse_date(rule.value)
    return Q(**{f"{column}__lt": moment}) if op == "before" else Q(**{f"{column}__gte": moment + timedelta(days=1)})


def members_of(contact_ids: QuerySet) -> Q:
    """Contacts whose id is in a subquery of contact ids. Every joined rule (consent,
    events, orders, engagement) is one non-correlated subquery: the database computes the
    set once instead of probing it for each of the 100,000 contacts."""
    return Q(pk__in=contact_ids)


COMPARE = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
HAVING = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def aggregate_q(groups: QuerySet, name: str, rule: Rule, *, by: str = "contact", zero: Decimal = Decimal(0)) -> Q:
    """Compare a per-contact aggregate (`groups` is annotated with `name`, grouped by
    contact) with the rule's number. Contacts with no rows have the value `zero`, so a
    comparison true at zero ("fewer than 3 orders") is written as "not among those for
    whom it is false". `by` names the contact column the groups are keyed on. Other apps
    use it for their own per-contact numbers (loyalty points, rewarded referrals)."""
    number = parse_number(rule.value)
    op = rule.operator
    if op == "ne":
        failing = groups.filter(**{name: number})
    else:
        failing = groups.exclude(**{f"{name}__{HAVING[op]}": number})
    if COMPARE[op](zero, number):
        return ~members_of(failing.values(by))
    passing = groups.exclude(**{name: number}) if op == "ne" else groups.filter(**{f"{name}__{HAVING[op]}": number})
    return members_of(passing.values(by))


def subscription_q(rule: Rule) -> Q:
    topic = rule.key.strip()
    if not Topic.objects.filter(key=topic).exists():
        raise RuleValueError(_("There is no topic “%(topic)s”.") % {"topic": topic})
    channel = rule.channel or Channel.EMAIL
    if channel not in Channel.values:
        raise RuleValueError(_("“%(channel)s” is not a channel.") % {"channel": channel})
    subscribed = members_of(
        Subscription.objects.filter(topic__key=topic, channel=channel, status=Subscription.Status.SUBSCRIBED).values("contact")
    )
    return subscribed if rule.operator == "is_subscribed" else ~subscribed


def event_q(rule: Rule) -> Q:
    name = require_text(rule.key)
    events = Event.objects.filter(name=name)
    if rule.days:
        events = events.filter(occurred_at__gte=days_ago(parse_days(rule.days)))
    if rule.operator == "count_at_least":
        wanted = parse_number(rule.value)
        if wanted < 1 or wanted != wanted.to_integral_value():
            raise RuleValueError(_("The count must be a whole number of at least 1."))
        counted = events.order_by().values("contact").annotate(n=Count("id")).filter(n__gte=int(wanted))
        return members_of(counted.values("contact"))
    happened = members_of(events.values("contact"))
    return happened if rule.operator == "did" else ~happened


def _revenue_orders() -> QuerySet:
    return Order.objects.filter(status__in=Order.REVENUE_STATUSES).order_by()


def order_count_q(rule: Rule) -> Q:
    return aggregate_q(_revenue_orders().values("contact").annotate(n=Count("id")), "n", rule)


def lifetime_value_q(rule: Rule) -> Q:
    return aggregate_q(_revenue_orders().values("contact").annotate(total=Sum("amount")), "total", rule)


def last_order_q(rule: Rule) -> Q:
    op = rule.operator
    if op in ("is_set", "is_not_set"):
        q = members_of(_revenue_orders().values("contact"))
        return q if op == "is_set" else ~q
    if op in ("in_last_days", "not_in_last_days"):
        q = members_of(_revenue_orders().filter(placed_at__gte=days_ago(parse_days(rule.value))).values("contact"))
        return q if op == "in_last_days" else ~q
    moment = parse_date(rule.value)
    latest = _revenue_orders().values("contact").annotate(at=Max("placed_at"))
    if op == "before":
        return members_of(latest.filter(at__lt=moment).values("contact"))
    return members_of(latest.filter(at__gte=moment + timedelta(days=1)).values("contact"))


def engagement_q(kind: str) -> Callable[[Rule], Q]:
    def build(rule: Rule) -> Q:
        recent = members_of(
            DeliveryEvent.objects.filter(
                kind=kind, occurred_at__gte=days_ago(parse_days(rule.value)), message__contact__isnull=False
            ).values("message__contact")
        )
        return recent if rule.operator == "in_last_days" else ~recent

    return build
