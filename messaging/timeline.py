"""One contact's history, newest first: the timeline of the contact page (a 360° view).

Messaging owns the page but not every table on it. Marketing (events, orders) and growth
(loyalty, gift cards, referrals) register their sources from their AppConfig.ready() with
`register_timeline_source`, so messaging never imports them. A source is a kind, a label,
a policy (who may see it) and `fetch(contact, limit)`: at most `limit` entries, newest
first, read in a fixed number of queries whatever the contact's history holds.

`contact_timeline` merges the sources the user may see and slices one page out of them:
page n reads at most n × per_page + 1 rows from each source, so the number of queries per
page never grows with the number of entries (pages go no deeper than MAX_PAGE).
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from messaging import policies
from messaging.consent_text import describe_change, describe_how
from messaging.delivery.retention import events_kept_since
from messaging.models import ConsentRecord, Contact, DeliveryEvent, OutboxMessage
from messaging.policies import Policy
from messaging.storable import LONE_SURROGATE

PER_PAGE = 50
MAX_PAGE = 200  # 10,000 entries deep: past that, narrow the view with a kind
TEXT_MAX = 160


@dataclass(frozen=True)
class Entry:
    """One line of the timeline. Plain text only: the template escapes every field."""

    when: datetime
    kind: str
    title: str
    detail: str = ""
    link: str = ""
    status: str = ""
    # Unfold label variants: "success", "danger", "warning", "info", "primary" or "" (grey).
    status_variant: str = ""
    # (key, label, variant), e.g. ("opened", "Opened", "success"): what happened to a message since.
    badges: tuple[tuple[str, str, str], ...] = ()
    sort_id: int = 0  # ties on `when` break by row id, newest row first


Fetch = Callable[[Contact, int], Iterable[Entry]]


@dataclass(frozen=True)
class TimelineSource:
    kind: str
    label: str | Promise
    policy: Policy
    fetch: Fetch


_SOURCES: dict[str, TimelineSource] = {}


def register_timeline_source(*, kind: str, label: str | Promise, policy: Policy, fetch: Fetch) -> None:
    """Add (or replace) the source of one kind of entry. `fetch(contact, limit)` returns at
    most `limit` entries, newest first, in a number of queries that does not depend on how
    many there are; `policy(user)` says who may see them."""
    _SOURCES[kind] = TimelineSource(kind=kind, label=label, policy=policy, fetch=fetch)


def timeline_sources(user: AbstractBaseUser | AnonymousUser) -> list[TimelineSource]:
    """The sources `user` may see, in registration order (messaging, marketing, growth)."""
    return [source for source in _SOURCES.values() if source.policy(user)]


@dataclass
class TimelinePage:
    entries: list[Entry]
    page: int
    per_page: int
    has_next: bool
    kind: str  # the kind shown alone, or "" for all of them
    kinds: list[tuple[str, str]] = field(default_factory=list)  # (kind, label) the user may pick

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def rows(self) -> list[tuple[Entry, str]]:
        """Each entry with the label of its kind."""
        labels = dict(self.kinds)
        return [(entry, labels.get(entry.kind, entry.kind)) for entry in self.entries]


def parse_page(value: Any) -> int:
    """A page number from a query string: anything that is not one is the first page."""
    try:
        page = int(str(value))
    except (TypeError, ValueError):
        return 1
    return min(max(page, 1), MAX_PAGE)


def _sort_key(entry: Entry) -> tuple:
    return (entry.when, entry.sort_id, entry.kind)


def contact_timeline(
    *, contact: Contact, user: AbstractBaseUser | AnonymousUser, page: int = 1, kind: str = "", per_page: int = PER_PAGE
) -> TimelinePage:
    """Page `page` of the contact's history as `user` may see it, newest first; `kind`
    keeps one kind of entry (an unknown or hidden kind shows them all)."""
    sources = timeline_sources(user)
    kinds = [(source.kind, str(source.label)) for source in sources]
    if kind in {source.kind for source in sources}:
        sources = [source for source in sources if source.kind == kind]
    else:
        kind = ""
    page = min(max(page, 1), MAX_PAGE)
    wanted = page * per_page + 1  # one more than this page ends with: is there a next one?
    entries = sorted(chain.from_iterable(list(source.fetch(contact, wanted))[:wanted] for source in sources), key=_sort_key, reverse=True)
    window = [_printable(entry) for entry in entries[(page - 1) * per_page : page * per_page + 1]]
    return TimelinePage(entries=window[:per_page], page=page, per_page=per_page, has_next=len(window) > per_page, kind=kind, kinds=kinds)


def _printable(entry: Entry) -> Entry:
    """A row stored before input was checked may hold a lone surrogate: shown as U+FFFD,
    never an error that takes the contact page down."""
    if LONE_SURROGATE.search(entry.title) or LONE_SURROGATE.search(entry.detail):
        return replace(entry, title=printable(entry.title), detail=printable(entry.detail))
    return entry


# --- helpers for sources ----------------------------------------------------------------------------
def printable(text: str) -> str:
    return LONE_SURROGATE.sub("\ufffd", text)


def compact(value: Any, *, limit: int = TEXT_MAX) -> str:
    """A value as one short line: text as it is, anything else as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def admin_link(name: str, pk: Any) -> str:
    return reverse(f"admin:{name}_change", args=[pk])


def attribute_rows(contact: Contact) -> list[tuple[str, str]]:
    """The contact's attributes as (key, value) rows, keys sorted; nested values as compact JSON."""
    attributes = contact.attributes if isinstance(contact.attributes, dict) else {}
    return [(printable(str(key)), compact(attributes[key], limit=500)) for key in sorted(attributes, key=str)]


# --- messaging's own sources -------------------------------------------------------------------------
SHOWN_EVENTS = [kind for kind in DeliveryEvent.Kind if kind != DeliveryEvent.Kind.FAILED]
EVENT_VARIANTS = {"delivered": "info", "opened": "success", "clicked": "success", "bounced": "danger", "complained": "danger"}
STATUS_VARIANTS = {"sent": "success", "failed": "danger", "suppressed": "warning", "cancelled": "", "queued": "info", "sending": "info"}


def message_entries(contact: Contact, limit: int) -> list[Entry]:
    """Her messages, with what people (not scanners or image proxies) did with them."""
    messages = list(
        OutboxMessage.objects.filter(contact=contact)
        .annotate(when=Coalesce("sent_at", "created_at"))
        .select_related("topic")
        .only("pk", "channel", "subject", "status", "error", "created_at", "sent_at", "body_pruned_at", "topic__name")
        .order_by("-when", "-pk")[:limit]
    )
    happened: dict[int, set[str]] = {}
    if messages:
        rows = (
            DeliveryEvent.objects.filter(message_id__in=[m.pk for m in messages], is_automated=False, kind__in=SHOWN_EVENTS)
            .values_list("message_id", "kind")
            .distinct()
        )
        for message_id, event_kind in rows:
            happened.setdefault(message_id, set()).add(event_kind)
    entries = []
    kept_since = events_kept_since()
    for message in messages:
        kinds = happened.get(message.pk, set())
        details = [message.topic.name if message.topic else ""]
        if message.status in (OutboxMessage.Status.FAILED, OutboxMessage.Status.SUPPRESSED) and message.error:
            details.append(compact(message.error))
        # Retention (messaging.delivery.retention): say what is gone rather than show "nothing happened".
        if message.body_pruned_at is not None:
            details.append(_("content deleted under the retention policy"))
        if kept_since is not None and message.created_at < kept_since:
            details.append(
                _("events before %(date)s deleted under the retention policy")
                % {"date": date_format(timezone.localtime(kept_since), "DATE_FORMAT")}
            )
        entries.append(
            Entry(
                when=message.when,
                kind="message",
                title=message.subject or _("%(channel)s message") % {"channel": message.get_channel_display()},
                detail=" · ".join(d for d in details if d),
                link=admin_link("messaging_outboxmessage", message.pk),
                status=message.get_status_display(),
                status_variant=STATUS_VARIANTS.get(message.status, ""),
                badges=tuple(
                    (kind.value, str(kind.label), EVENT_VARIANTS.get(kind.value, "warning")) for kind in SHOWN_EVENTS if kind in kinds
                ),
                sort_id=message.pk,
            )
        )
    return entries


CONSENT_ACTIONS = (ConsentRecord.Action.GRANTED, ConsentRecord.Action.WITHDRAWN)
PREFERENCE_ACTIONS = (
    ConsentRecord.Action.PAUSED,
    ConsentRecord.Action.RESUMED,
    ConsentRecord.Action.FREQUENCY,
    ConsentRecord.Action.LANGUAGE,
)


def _consent_records(contact: Contact, actions, limit: int) -> list[ConsentRecord]:
    return list(
        ConsentRecord.objects.filter(contact=contact, action__in=actions)
        .select_related("topic", "actor")
        .only(
            "pk", "action", "channel", "source", "details", "ip_address", "wording_version", "created_at", "topic__name", "actor__username"
        )
        .order_by("-created_at", "-id")[:limit]
    )


def _consent_entry(record: ConsentRecord, kind: str) -> Entry:
    """In the words of the consent log (messaging.consent_text): one sentence builder for both."""
    return Entry(
        when=record.created_at,
        kind=kind,
        title=describe_change(record),
        detail=describe_how(record),
        link=admin_link("messaging_consentrecord", record.pk),
        sort_id=record.pk,
    )


def consent_entries(contact: Contact, limit: int) -> list[Entry]:
    """Consent given or withdrawn, per topic and channel (an unsubscribe among them)."""
    return [_consent_entry(record, "consent") for record in _consent_records(contact, CONSENT_ACTIONS, limit)]


def preference_entries(contact: Contact, limit: int) -> list[Entry]:
    """What she chose in the preference center: pause, frequency, language."""
    return [_consent_entry(record, "preference") for record in _consent_records(contact, PREFERENCE_ACTIONS, limit)]


def register_messaging_sources() -> None:
    register_timeline_source(kind="message", label=gettext_lazy("Messages"), policy=policies.can_view_messages, fetch=message_entries)
    register_timeline_source(kind="consent", label=gettext_lazy("Consent"), policy=policies.can_view_consent_records, fetch=consent_entries)
    register_timeline_source(
        kind="preference", label=gettext_lazy("Preferences"), policy=policies.can_view_consent_records, fetch=preference_entries
    )
