"""Display helpers for the analytics pages."""

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from messaging.models import Channel, OutboxMessage

register = template.Library()


@register.filter
def percent(ratio) -> str:
    """0.2534 → "25.3 %" (localised)."""
    try:
        return f"{number_format(float(ratio) * 100, 1)} %"
    except (TypeError, ValueError):
        return "-"


COLUMN_LABELS = {
    "day": _("Day"),
    "channel": _("Channel"),
    "provider": _("Provider"),
    "topic": _("Topic"),
    "campaign_id": _("Campaign"),
    "automation_id": _("Automation"),
    "sent": _("Sent"),
    "delivered": _("Delivered"),
    "opened_unique": _("Unique opens"),
    "clicked_unique": _("Unique clicks"),
    "unsubscribed": _("Unsubscribes"),
    "bounced": _("Bounces"),
    "complained": _("Complaints"),
    "conversions": _("Conversions"),
    "revenue": _("Revenue"),
    "open_rate": _("Open rate"),
    "click_rate": _("Click rate"),
    "unsubscribe_rate": _("Unsubscribe rate"),
    "bounce_rate": _("Bounce rate"),
    "complaint_rate": _("Complaint rate"),
}


@register.filter
def column_label(name) -> str:
    """A table column's heading: the CSV export keeps the key, the page says it in words
    (a message status by its label)."""

    if label := COLUMN_LABELS.get(str(name)):
        return str(label)
    if str(name) in OutboxMessage.Status.values:
        return str(OutboxMessage.Status(str(name)).label)
    return str(name)


@register.filter
def channel_label(value) -> str:
    """ "email" → "Email" ("E-mail" in French); anything else as it is."""

    return str(Channel(value).label) if value in Channel.values else value
