"""Ready-made automations for every seed scenario. Creating one makes an editable draft
copy (see `create_automation_from_preset`); nothing here runs by itself.

Event names follow what the host sends (README, "Automations"): `user_registered`,
`enrollment`, `demo_attended`, `content_published`, `lesson_completed`,
`appointment_booked` or `_confirmed` / `_rescheduled` / `_cancelled` or `_canceled`
(with `appointment_id` and `appointment_at`), `cart_abandoned`, and the order events `record_order` emits
(`order_paid`, `order_fulfilled`, `order_payment_failed`, `order_pending`).
"""

from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from marketing.models import Automation

EVENT, SCHEDULE, FORM_CONFIRMED = "event", "schedule", "form_confirmed"
SEND, WAIT, CONDITION, UPDATE = "send", "wait", "condition", "update"
ENROLLED = {"type": "group", "op": "and", "rules": [{"type": "rule", "field": "event", "operator": "did", "key": "enrollment"}]}


@dataclass(frozen=True)
class Preset:
    key: str
    name: str | Promise
    description: str | Promise
    icon: str
    trigger_type: str
    trigger: dict[str, Any]
    steps: list[tuple[str, dict[str, Any]]]
    exit_events: list[dict[str, str]] = field(default_factory=list)
    reentry: str = "every_trigger"
    transactional: bool = False
    quiet_hours: tuple[str, str] | None = None
    frequency_cap: int = 0
    audience_name: str | Promise = ""
    audience_rules: dict | None = None
    seed: str = ""

    @property
    def trigger_label(self) -> str:
        """The trigger kind as the console says it ("Event", "Schedule"), translated."""
        return str(Automation.Trigger(self.trigger_type).label)


_PRESETS = [
    Preset(
        "welcome",
        _("Welcome"),
        _("A welcome email once, when someone registers."),
        "waving_hand",
        EVENT,
        {"events": ["user_registered"]},
        [(SEND, {"template": "welcome", "channel": "email"})],
        reentry="once",
        seed="002, 003",
    ),
    Preset(
        "welcome-form",
        _("Welcome after a sign-up form"),
        _("When someone confirms a sign-up form: mark them welcomed and send the welcome email, once."),
        "how_to_reg",
        FORM_CONFIRMED,
        {},
        [(UPDATE, {"set": {"welcomed": True}}), (SEND, {"template": "welcome", "channel": "email"})],
        reentry="once",
    ),
    Preset(
        "enrollment",
        _("Course enrollment"),
        _("Confirms an enrollment with the course's title and link."),
        "school",
        EVENT,
        {"events": ["enrollment"]},
        [(SEND, {"template": "enrollment", "channel": "email"})],
        transactional=True,
        seed="002",
    ),
    Preset(
        "post-demo",
        _("Post-demo follow-up"),
        _("One hour after a demo class, invite the contact to book; stops if they buy."),
        "co_present",
        EVENT,
        {"events": ["demo_attended"]},
        [(WAIT, {"hours": 1}), (SEND, {"template": "post-demo", "channel": "email"})],
        exit_events=[{"event": "order_paid"}],
        reentry="after_exit",
        seed="002",
    ),
    Preset(
        "weekly-progress",
        _("Weekly progress report"),
        _("Every Monday at 09:00 in each contact's time zone, their week's numbers."),
        "insights",
        SCHEDULE,
        {"weekday": 0, "time": "09:00"},
        [(SEND, {"template": "weekly-progress", "channel": "email", "context": "weekly_progress"})],
        audience_name=_("Enrolled contacts"),
        audience_rules=ENROLLED,
        seed="002",
    ),
    Preset(
        "new-content",
        _("New content announcement"),
        _("When content is published, tell every enrolled contact."),
        "campaign",
        EVENT,
        {"events": ["content_published"], "fan_out": True},
        [(SEND, {"template": "new-content", "channel": "email"})],
        audience_name=_("Enrolled contacts"),
        audience_rules=ENROLLED,
        seed="002",
    ),
    Preset(
        "order-paid",
        _("Payment confirmation, invoice and activation"),
        _("On a paid order (Stripe webhook or API): the receipt, the invoice and the activation email, once."),
        "payments",
        EVENT,
        {"events": ["order_paid"]},
        [
            (SEND, {"template": "payment-confirmation", "channel": "email", "context": "order"}),
            (SEND, {"template": "invoice", "channel": "email", "context": "order"}),
            (SEND, {"template": "account-activation", "channel": "email", "context": "order"}),
            (UPDATE, {"set": {"activated": True}, "add_tag": "customer"}),
        ],
        transactional=True,
        seed="000, 002, 004",
    ),
    Preset(
        "order-shipped",
        _("Shipment notification"),
        _("When an order is fulfilled, the tracking link."),
        "local_shipping",
        EVENT,
        {"events": ["order_fulfilled"]},
        [(SEND, {"template": "order-shipped", "channel": "email", "context": "order"})],
        transactional=True,
        seed="004",
    ),
    Preset(
        "payment-failed",
        _("Payment failed"),
        _("When a payment fails, a link to retry it."),
        "credit_card_off",
        EVENT,
        {"events": ["order_payment_failed"]},
        [(SEND, {"template": "payment-failed", "channel": "email", "context": "order"})],
        transactional=True,
        seed="004",
    ),
    Preset(
        "booking-confirmation",
        _("Booking confirmation"),
        _("Confirms a booked appointment with its time and place."),
        "event_available",
        EVENT,
        {"events": ["appointment_booked", "appointment_confirmed"]},  # a host sends one of the two
        [(SEND, {"template": "booking-confirmation", "channel": "email", "once_per": "appointment_id"})],
        transactional=True,
        seed="004",
    ),
    Preset(
        "appointment-reminders",
        _("Appointment reminders"),
        _("24 h and 2 h before the appointment; cancelled when it is, planned again when it moves."),
        "alarm",
        EVENT,
        {"events": ["appointment_booked", "appointment_confirmed", "appointment_rescheduled"]},
        [
            (WAIT, {"until": {"property": "appointment_at", "offset_minutes": -1440}, "if_past": "skip_next"}),
            (SEND, {"template": "appointment-reminder-24h", "channel": "email"}),
            (WAIT, {"until": {"property": "appointment_at", "offset_minutes": -120}, "if_past": "skip_next"}),
            (SEND, {"template": "appointment-reminder-2h", "channel": "email"}),
        ],
        exit_events=[
            {"event": "appointment_cancelled", "match": "appointment_id"},
            {"event": "appointment_canceled", "match": "appointment_id"},  # seed 004's status spelling
            {"event": "appointment_rescheduled", "match": "appointment_id"},
            {"event": "appointment_confirmed", "match": "appointment_id"},  # booked, then confirmed: planned once
        ],
        seed="004",
    ),
    Preset(
        "cart-abandoned",
        _("Abandoned cart"),
        _("Reminders 1 h and 24 h after a cart is abandoned; an order ends it."),
        "shopping_cart",
        EVENT,
        {"events": ["cart_abandoned"]},
        [
            (WAIT, {"hours": 1}),
            (SEND, {"template": "cart-abandoned", "channel": "email"}),
            (WAIT, {"hours": 23}),
            (SEND, {"template": "cart-abandoned", "channel": "email"}),
        ],
        exit_events=[{"event": "order_pending"}, {"event": "order_paid"}, {"event": "order_placed"}],
        reentry="after_exit",
        quiet_hours=("21:00", "08:00"),
        seed="003, 004",
    ),
    Preset(
        "re-engagement",
        _("Re-engagement"),
        _("7 days without activity: an offer if the contact accepts promotions; dormant at 14 days."),
        "bedtime",
        EVENT,
        {"events": ["*"]},
        [
            (WAIT, {"days": 7}),
            (CONDITION, {"check": "consent", "topic": "promotions", "channel": "email", "else": {"goto": 4}}),
            (SEND, {"template": "re-engagement", "channel": "email"}),
            (WAIT, {"days": 7}),
            (UPDATE, {"set": {"lifecycle_stage": "dormant"}, "add_tag": "dormant"}),
        ],
        reentry="restart",
        quiet_hours=("21:00", "08:00"),
        seed="004",
    ),
]

PRESETS: dict[str, Preset] = {preset.key: preset for preset in _PRESETS}
