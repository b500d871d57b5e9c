"""Consent records in words, for the consent log and the contact page: never the stored
details dict or a source key.

    Subscribed to “Newsletter” by email via the preference center, IP 203.0.113.4
    Paused marketing messages for 2 weeks, until 17 March 2026 via the preference center
"""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.utils import formats
from django.utils.dateparse import parse_datetime
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from messaging.models import ConsentRecord, Frequency

Action, Source = ConsentRecord.Action, ConsentRecord.Source

CHANNEL_WORDS = {
    "email": gettext_lazy("by email"),
    "sms": gettext_lazy("by SMS"),
    "whatsapp": gettext_lazy("on WhatsApp"),
    "push": gettext_lazy("by push notification"),
}
SOURCE_WORDS = {
    Source.CONSOLE: gettext_lazy("in the console"),
    Source.IMPORT: gettext_lazy("by a contact import"),
    Source.API: gettext_lazy("through the API"),
    Source.PREFERENCE_CENTER: gettext_lazy("via the preference center"),
    Source.UNSUBSCRIBE_LINK: gettext_lazy("via the unsubscribe link"),
    Source.REPLY: gettext_lazy("by replying STOP"),
    Source.SIGNUP: gettext_lazy("via the sign-up form"),
    Source.SYSTEM: gettext_lazy("by Mailroom itself"),
}


def _quoted(value: Any) -> str:
    return _("“%(name)s”") % {"name": value}


def _language(code: Any) -> str:
    names = dict(settings.LANGUAGES)
    return str(names.get(code, code or _("none")))


def _frequency(value: Any) -> str:
    try:
        return str(Frequency(value).label)
    except ValueError:
        return str(value)


def _moment(value: Any) -> str:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return formats.date_format(parsed, "DATE_FORMAT") if parsed else str(value)


def _other_details(details: Mapping, known: set[str]) -> list[str]:
    """Keys no sentence knows, as "Label: value" (the key's words, not its spelling)."""
    return [
        f"{capfirst(str(key).replace('_', ' '))}: {value}" for key, value in details.items() if key not in known and value not in (None, "")
    ]


def describe_change(record: ConsentRecord) -> str:
    """What changed, without how: "Subscribed to “Newsletter” by email"."""
    details = record.details if isinstance(record.details, Mapping) else {}
    channel = CHANNEL_WORDS.get(record.channel, record.channel)
    topic = _quoted(record.topic.name) if record.topic_id else _("every topic")
    if record.action == Action.GRANTED:
        sentence = _("Subscribed to %(topic)s %(channel)s") % {"topic": topic, "channel": channel}
    elif record.action == Action.WITHDRAWN:
        sentence = _("Unsubscribed from %(topic)s %(channel)s") % {"topic": topic, "channel": channel}
    elif record.action == Action.PAUSED:
        weeks = details.get("weeks")
        sentence = (
            ngettext("Paused marketing messages for %(n)s week", "Paused marketing messages for %(n)s weeks", int(weeks)) % {"n": weeks}
            if isinstance(weeks, int)
            else _("Paused marketing messages")
        )
        if details.get("until"):
            sentence += ", " + _("until %(date)s") % {"date": _moment(details["until"])}
    elif record.action == Action.RESUMED:
        sentence = _("Resumed marketing messages")
    elif record.action == Action.FREQUENCY:
        sentence = _("Changed how often marketing messages come from %(before)s to %(after)s") % {
            "before": _quoted(_frequency(details.get("before"))),
            "after": _quoted(_frequency(details.get("after"))),
        }
    elif record.action == Action.LANGUAGE:
        sentence = _("Changed the language from %(before)s to %(after)s") % {
            "before": _language(details.get("before")),
            "after": _language(details.get("after")),
        }
    else:
        sentence = str(record.get_action_display())
    extra = _other_details(details, {"weeks", "until", "before", "after"})
    return "; ".join([sentence, *extra])


def describe_how(record: ConsentRecord) -> str:
    """How, who and from where: "via the preference center by ada, IP 203.0.113.4"."""
    sentence = str(SOURCE_WORDS.get(record.source, record.get_source_display()))
    if record.actor_id:
        sentence += " " + _("by %(user)s") % {"user": record.actor}
    if record.ip_address:
        sentence += ", " + _("IP %(address)s") % {"address": record.ip_address}
    if record.wording_version:
        sentence += ", " + _("wording %(version)s") % {"version": _quoted(record.wording_version)}
    return sentence


def describe_consent(record: ConsentRecord) -> str:
    """The whole record in one sentence: what, how, who and from where."""
    return f"{describe_change(record)} {describe_how(record)}"
