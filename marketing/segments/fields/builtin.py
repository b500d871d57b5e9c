"""The fields marketing offers out of the box (contact columns, attributes, consent, events,
orders, engagement), registered from MarketingConfig.ready()."""

from django.conf import settings
from django.utils.translation import gettext_lazy

from marketing.segments.fields.builders import (
    choice_q,
    date_q,
    engagement_q,
    event_q,
    last_order_q,
    lifetime_value_q,
    order_count_q,
    subscription_q,
    text_q,
)
from marketing.segments.fields.json_lookups import attribute_q
from marketing.segments.fields.registry import (
    ATTRIBUTE_OPERATORS,
    CHOICE_OPERATORS,
    DATE_OPERATORS,
    NUMBER_OPERATORS,
    TEXT_OPERATORS,
    SegmentField,
    register_segment_field,
)
from messaging.models import DeliveryEvent, Topic


def topic_choices() -> list[tuple[str, str]]:
    return list(Topic.objects.values_list("key", "name"))


def language_choices() -> list[tuple[str, str]]:
    return [(code, str(name)) for code, name in settings.LANGUAGES]


CONTACT = gettext_lazy("Contact")
ENGAGEMENT = gettext_lazy("Engagement")


def register_builtin_fields() -> None:
    for name, label in (
        ("email", gettext_lazy("Email")),
        ("phone", gettext_lazy("Phone")),
        ("first_name", gettext_lazy("First name")),
        ("last_name", gettext_lazy("Last name")),
        ("external_id", gettext_lazy("External id")),
    ):
        register_segment_field(SegmentField(name, label, CONTACT, TEXT_OPERATORS, lambda rule, column=name: text_q(column, rule)))
    register_segment_field(
        SegmentField(
            "locale",
            gettext_lazy("Language"),
            CONTACT,
            CHOICE_OPERATORS,
            lambda rule: choice_q("locale", rule),
            choices=language_choices,
            value_hint="en, fr",
        )
    )
    register_segment_field(
        SegmentField(
            "timezone",
            gettext_lazy("Time zone"),
            CONTACT,
            CHOICE_OPERATORS,
            lambda rule: choice_q("timezone", rule),
            value_hint="Europe/Paris",
        )
    )
    register_segment_field(
        SegmentField(
            "created_at",
            gettext_lazy("Signed up"),
            CONTACT,
            DATE_OPERATORS,
            lambda rule: date_q("created_at", rule),
            value_hint=gettext_lazy("days, or YYYY-MM-DD"),
        )
    )
    register_segment_field(
        SegmentField(
            "attribute",
            gettext_lazy("Attribute"),
            gettext_lazy("Attributes"),
            ATTRIBUTE_OPERATORS,
            attribute_q,
            needs=("key",),
            key_label=gettext_lazy("attribute name"),
            value_hint="lifecycle_stage, tags…",
        )
    )
    register_segment_field(
        SegmentField(
            "subscribed",
            gettext_lazy("Subscribed to topic"),
            gettext_lazy("Consent"),
            ("is_subscribed", "is_not_subscribed"),
            subscription_q,
            needs=("key", "channel"),
            key_label=gettext_lazy("topic"),
            choices=topic_choices,
        )
    )
    register_segment_field(
        SegmentField(
            "event",
            gettext_lazy("Event"),
            gettext_lazy("Events"),
            ("did", "did_not", "count_at_least"),
            event_q,
            needs=("key", "days"),
            key_label=gettext_lazy("event name"),
            value_hint=gettext_lazy("times"),
        )
    )
    register_segment_field(
        SegmentField("order_count", gettext_lazy("Number of orders"), gettext_lazy("Orders"), NUMBER_OPERATORS, order_count_q)
    )
    register_segment_field(
        SegmentField("lifetime_value", gettext_lazy("Lifetime value"), gettext_lazy("Orders"), NUMBER_OPERATORS, lifetime_value_q)
    )
    register_segment_field(
        SegmentField(
            "last_order",
            gettext_lazy("Last order"),
            gettext_lazy("Orders"),
            DATE_OPERATORS,
            last_order_q,
            value_hint=gettext_lazy("days, or YYYY-MM-DD"),
        )
    )
    register_segment_field(
        SegmentField(
            "opened",
            gettext_lazy("Opened a message"),
            ENGAGEMENT,
            ("in_last_days", "not_in_last_days"),
            engagement_q(DeliveryEvent.Kind.OPENED),
            value_hint=gettext_lazy("days"),
        )
    )
    register_segment_field(
        SegmentField(
            "clicked",
            gettext_lazy("Clicked a link"),
            ENGAGEMENT,
            ("in_last_days", "not_in_last_days"),
            engagement_q(DeliveryEvent.Kind.CLICKED),
            value_hint=gettext_lazy("days"),
        )
    )
