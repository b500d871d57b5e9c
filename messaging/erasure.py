"""GDPR erasure of one contact's personal data from every table messaging keeps it in.

`erase_contact` (messaging.contacts) calls `scrub_personal_data` inside its transaction,
before it blanks the contact itself. What stays is what the figures need: rows, counts,
channels, statuses, event kinds, timestamps, link ids, campaign and automation ids. What
goes: addresses, names, subjects, bodies, headers, render contexts, provider answers and
event payloads that echo them. A suppression keeps a hash of the address (see
`Suppression.keys_for`): an erased person who once complained or unsubscribed stays
suppressed, yet nobody can read the address back.

Higher apps keep personal data of their own (marketing events and orders, growth gift
cards and referrals); messaging does not import them. They connect to `contact_erased`
and scrub their tables in the same transaction (a receiver that fails rolls it all back).
"""

import hashlib
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast
from django.dispatch import Signal

from messaging.metadata import REPORTED_KEYS
from messaging.models import (
    Attachment,
    AuditEntry,
    Contact,
    DeliveryAttempt,
    DeliveryEvent,
    ImportJob,
    InboxMessage,
    OutboxBody,
    OutboxMessage,
    PendingSignup,
    SandboxMessage,
    Suppression,
    TrackedLink,
)
from messaging.models.consent import hashed_address

# Sent inside the erasing transaction, before the contact row is blanked, with
# `contact`, `values` (every personal string known for the person: addresses, names,
# external id) and `message_ids` (the outbox rows that were hers).
contact_erased = Signal()

ERASED = "[erased]"
IDENTITY_FIELDS = ("email", "phone", "external_id", "first_name", "last_name")
PERSONAL_FIELDS = {*IDENTITY_FIELDS, "attributes", "push_tokens", "contact"}
KEPT_PAYLOAD = {"link", "automated", "inbound", "esp"}
BATCH = 500


# --- helpers higher apps use too -------------------------------------------------------------
def scrub_text(text: str, values: Iterable[str]) -> str:
    """`text` with every occurrence of the personal values (any case) replaced."""
    if not text:
        return text
    wanted = sorted({v for v in values if v and len(v) > 2}, key=len, reverse=True)
    if not wanted:
        return text
    return re.sub("|".join(re.escape(v) for v in wanted), ERASED, text, flags=re.IGNORECASE)


def scrub_json(value: Any, values: Iterable[str]) -> Any:
    values = list(values)
    if isinstance(value, dict):
        return {key: scrub_json(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_json(item, values) for item in value]
    if isinstance(value, str):
        return scrub_text(value, values)
    return value


def aggregates_only(value: Any) -> Any:
    """Numbers, booleans and the structure around them; every text leaf goes."""
    if isinstance(value, dict):
        return {key: aggregates_only(item) for key, item in value.items() if not isinstance(item, str)}
    if isinstance(value, list):
        return [aggregates_only(item) for item in value if not isinstance(item, str)]
    return value


def blank_leaves(value: Any) -> Any:
    """Every leaf that says something replaced with ERASED (None stays None)."""
    if isinstance(value, dict):
        return {key: blank_leaves(item) for key, item in value.items()}
    if value is None or value == "" or isinstance(value, bool):
        return value
    return ERASED


def hashed_key(key: str | None) -> str | None:
    """A unique key (dedup, idempotency) that may name the person: still unique, unreadable."""
    return None if key is None else "erased:" + hashlib.sha256(key.encode()).hexdigest()


def text_contains_any(field: str, values: Iterable[str]) -> tuple[dict, Q]:
    """An annotation casting `field` to text and a Q matching rows that hold any value."""
    alias = f"_{field}_text"
    query = Q()
    for value in values:
        query |= Q(**{f"{alias}__icontains": value})
    return {alias: Cast(field, models.TextField())}, query


# --- the scrub --------------------------------------------------------------------------------
def personal_values(contact: Contact) -> set[str]:
    """What identifies the person: the contact's fields now, any value they had before (from
    the audit trail) and every address her messages went to."""
    values = {str(getattr(contact, name) or "") for name in IDENTITY_FIELDS}
    if contact.first_name and contact.last_name:
        values.add(f"{contact.first_name} {contact.last_name}")
    for changes in AuditEntry.objects.filter(target_type=Contact._meta.label_lower, target_id=str(contact.pk)).values_list(
        "changes", flat=True
    ):
        for name in IDENTITY_FIELDS:
            change = changes.get(name) if isinstance(changes, dict) else None
            if isinstance(change, dict):
                values.update(str(change.get(side) or "") for side in ("before", "after"))
    values.update(OutboxMessage.objects.filter(contact=contact).values_list("to_address", flat=True).distinct())
    return {value for value in values if len(value.strip()) > 1}


def addresses_of(values: set[str]) -> set[str]:
    """The values that are addresses (an email or a phone number), in their stored form."""
    return {value.strip().lower() for value in values if "@" in value or value.startswith("+")}


def scrub_personal_data(*, contact: Contact) -> dict[str, int]:
    """Scrub everything messaging keeps about the contact; returns how many rows of each
    kind were touched (for the audit entry: counts, no personal data)."""
    values = personal_values(contact)
    addresses = addresses_of(values)
    message_ids = list(OutboxMessage.objects.filter(Q(contact=contact) | Q(to_address__in=addresses)).values_list("pk", flat=True))
    counts = {
        "messages": _scrub_outbox(message_ids, values),
        "sandbox": SandboxMessage.objects.filter(Q(message_id__in=message_ids) | Q(to_address__in=addresses)).update(
            to_address="", subject="", body_text="", body_html="", headers={}, source=""
        ),
        "attachments": _delete_attachments(message_ids),
        "attempts": _scrub_rows(DeliveryAttempt.objects.filter(message_id__in=message_ids), ["response"], values),
        "events": _scrub_event_payloads(message_ids),
        "inbound": _scrub_inbound(contact, addresses, values),
        "suppressions": _hash_suppressions(addresses),
        # Sign-ups she never confirmed: nothing in them is worth keeping once she asks.
        "pending_signups": PendingSignup.objects.filter(email__in=addresses).delete()[0],
    }
    counts["links"] = _scrub_tracked_links(values)
    counts["import_errors"] = _scrub_import_errors(values, addresses)
    counts["audit"] = _scrub_audit(contact, message_ids, values, addresses)
    _scrub_admin_log(contact, message_ids, values, addresses)
    contact_erased.send(sender=Contact, contact=contact, values=frozenset(values), message_ids=message_ids)
    return counts


def _delete_attachments(message_ids: list[int]) -> int:
    """Her messages' files go: each row's deletion deletes its file after commit (messaging.wiring)."""
    carrying = OutboxMessage.objects.filter(pk__in=message_ids, has_attachments=True)
    deleted, _by_model = Attachment.objects.filter(message__in=carrying).delete()
    carrying.update(has_attachments=False)
    return deleted


def _scrub_outbox(message_ids: list[int], values: set[str]) -> int:
    # Her queued messages will not go out any more: they would go to nobody.
    OutboxMessage.objects.filter(pk__in=message_ids, status=OutboxMessage.Status.QUEUED).update(
        status=OutboxMessage.Status.CANCELLED, error="the contact was erased"
    )
    rows = OutboxMessage.objects.filter(pk__in=message_ids).only("pk", "metadata", "error", "dedup_key", "sealed_secrets")
    changed = []
    for message in rows.iterator(chunk_size=BATCH):
        metadata = message.metadata if isinstance(message.metadata, dict) else {}
        message.metadata = {key: value for key, value in metadata.items() if key in REPORTED_KEYS} | {"erased": True}
        message.error = scrub_text(message.error, values)
        message.dedup_key = hashed_key(message.dedup_key)
        message.to_address = message.subject = ""
        message.headers = {}
        message.sealed_secrets = ""  # a link meant for her alone goes with her
        changed.append(message)
    fields = ["to_address", "subject", "headers", "metadata", "error", "dedup_key", "sealed_secrets"]
    OutboxMessage.objects.bulk_update(changed, fields, batch_size=BATCH)
    OutboxBody.objects.filter(message_id__in=message_ids).delete()
    return len(changed)


def _scrub_rows(queryset: models.QuerySet, fields: list[str], values: set[str]) -> int:
    changed = []
    for row in queryset.only("pk", *fields).iterator(chunk_size=BATCH):
        before = [getattr(row, name) for name in fields]
        for name in fields:
            setattr(row, name, scrub_text(getattr(row, name), values))
        if before != [getattr(row, name) for name in fields]:
            changed.append(row)
    if changed:
        queryset.model.objects.bulk_update(changed, fields, batch_size=BATCH)
    return len(changed)


def _scrub_event_payloads(message_ids: list[int]) -> int:
    changed = []
    for event in (
        DeliveryEvent.objects.filter(message_id__in=message_ids).exclude(payload={}).only("pk", "payload").iterator(chunk_size=BATCH)
    ):
        payload = event.payload if isinstance(event.payload, dict) else {}
        event.payload = {key: value for key, value in payload.items() if key in KEPT_PAYLOAD and not isinstance(value, (dict, list))}
        changed.append(event)
    DeliveryEvent.objects.bulk_update(changed, ["payload"], batch_size=BATCH)
    return len(changed)


def _scrub_inbound(contact: Contact, addresses: set[str], values: set[str]) -> int:
    inbound = InboxMessage.objects.filter(Q(contact=contact) | Q(from_address__in=addresses))
    _scrub_rows(inbound, ["result"], values)
    return inbound.update(from_address="", body="")


def _hash_suppressions(addresses: set[str]) -> int:
    changed = []
    for suppression in Suppression.objects.filter(address__in=addresses):
        suppression.address = hashed_address(suppression.address)
        suppression.note = ""
        changed.append(suppression)
    Suppression.objects.bulk_update(changed, ["address", "note"])
    return len(changed)


def _targets(content_type_field: str, id_field: str, contact: Contact, message_ids: list[int], addresses: set[str]) -> Q:
    """Rows about the contact, her messages, her inbound messages and her suppressions."""
    inbound_ids = InboxMessage.objects.filter(Q(contact=contact) | Q(from_address__in=addresses)).values_list("pk", flat=True)
    suppression_ids = Suppression.objects.filter(address__in=[hashed_address(a) for a in addresses]).values_list("pk", flat=True)
    targets = {Contact: [contact.pk], OutboxMessage: message_ids, InboxMessage: list(inbound_ids), Suppression: list(suppression_ids)}
    query = Q()
    for model, ids in targets.items():
        if ids:
            kind = model._meta.label_lower if content_type_field == "target_type" else ContentType.objects.get_for_model(model)
            query |= Q(**{content_type_field: kind, f"{id_field}__in": [str(pk) for pk in ids]})
    return query


def _scrub_audit(contact: Contact, message_ids: list[int], values: set[str], addresses: set[str]) -> int:
    """Keep every entry (who did what, when); blank the values of entries about her and
    scrub her addresses out of any other entry that mentions them."""
    about_her = _targets("target_type", "target_id", contact, message_ids, addresses)
    annotations, mentions = text_contains_any("changes", addresses)
    for address in addresses:
        mentions |= Q(target_repr__icontains=address)
    entries = AuditEntry.objects.annotate(**annotations).filter(about_her | mentions) if addresses else AuditEntry.objects.filter(about_her)
    own = set(AuditEntry.objects.filter(about_her).values_list("pk", flat=True))
    changed = []
    for entry in entries.only("pk", "target_type", "target_repr", "changes"):
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        if entry.pk in own and entry.target_type == Contact._meta.label_lower:
            # who she was: every value of her identity fields goes, whatever it was
            entry.changes = {
                field: blank_leaves(change) if field in PERSONAL_FIELDS else scrub_json(change, values) for field, change in changes.items()
            }
        else:
            entry.changes = scrub_json(changes, values)
        entry.target_repr = scrub_text(entry.target_repr, values)
        changed.append(entry)
    AuditEntry.objects.bulk_update(changed, ["changes", "target_repr"], batch_size=BATCH)
    return len(changed)


def _scrub_tracked_links(values: set[str]) -> int:
    """A link personalised with her address or name (`…?email={{ contact.email }}`) is a
    TrackedLink row of its own, with no contact column: scrubbed by what it holds, as it is
    or URL-encoded. The row stays (its clicks stay counted); its hash changes with its URL."""
    wanted = {form for value in values if len(value) > 2 for form in (value, quote(value, safe=""), quote_plus(value))}
    query = Q()
    for value in wanted:
        query |= Q(url__icontains=value)
    if not wanted:
        return 0
    changed = []
    for link in TrackedLink.objects.filter(query).only("pk", "url", "url_hash"):
        link.url = scrub_text(link.url, wanted)
        link.url_hash = hashlib.sha256(f"erased:{link.url_hash}".encode()).hexdigest()  # still unique, matches no new link
        changed.append(link)
    TrackedLink.objects.bulk_update(changed, ["url", "url_hash"], batch_size=BATCH)
    return len(changed)


def _scrub_import_errors(values: set[str], addresses: set[str]) -> int:
    """A console import's per-line errors can quote her address."""
    if not addresses:
        return 0
    annotations, mentions = text_contains_any("errors", addresses)
    changed = []
    for job in ImportJob.objects.annotate(**annotations).filter(mentions).only("pk", "errors"):
        job.errors = scrub_json(job.errors, values)
        changed.append(job)
    ImportJob.objects.bulk_update(changed, ["errors"], batch_size=BATCH)
    return len(changed)


def _scrub_admin_log(contact: Contact, message_ids: list[int], values: set[str], addresses: set[str]) -> None:
    """Django admin's own history: its object names and change messages."""
    query = _targets("content_type", "object_id", contact, message_ids, addresses)
    for address in addresses:
        query |= Q(object_repr__icontains=address) | Q(change_message__icontains=address)
    changed = []
    for entry in LogEntry.objects.filter(query).only("pk", "object_repr", "change_message"):
        entry.object_repr = scrub_text(entry.object_repr, values)[:200]
        entry.change_message = scrub_text(entry.change_message, values)
        changed.append(entry)
    LogEntry.objects.bulk_update(changed, ["object_repr", "change_message"], batch_size=BATCH)
