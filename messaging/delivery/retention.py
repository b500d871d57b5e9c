"""Retention: the nightly job that empties the bodies of old messages and deletes old
delivery events, in bounded batches that never hold the send path.

What goes:
- bodies: a finished message (sent, failed, cancelled, suppressed) older than
  MAILROOM_BODY_RETENTION_DAYS keeps its row, subject, status, timestamps and the metadata
  reports count it by (messaging.metadata.REPORTED_KEYS, the erased and digest flags); its
  text, HTML, headers, sealed secrets, render context and files go, its sandbox copies are
  emptied, and `body_pruned_at` says when (the console and view-in-browser say so plainly);
- events: DeliveryEvent rows older than MAILROOM_EVENT_RETENTION_DAYS, and never younger
  than what every registered event horizon allows (marketing registers its analytics
  rollups: an event goes only once a finished rollup day counts it).

What stays: message rows and statuses, consent records, suppressions, the audit trail and
higher apps' aggregates (DailyStat). Queued and sending messages are never touched.

Each batch (MAILROOM_RETENTION_BATCH ids, the oldest first through the `outbox_retention`
partial index or the events' `occurred_at` index) is its own short transaction: the
selected ids are locked with SKIP LOCKED on PostgreSQL, then changed with
`UPDATE … WHERE id IN (…)` / `DELETE … WHERE id IN (…)`. A run stops when its time budget
is spent; pruned rows leave the index, so the next run carries on where this one stopped.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from messaging.metadata import REPORTED_KEYS
from messaging.models import Attachment, DeliveryEvent, OutboxBody, OutboxMessage, SandboxMessage

logger = logging.getLogger(__name__)

Status = OutboxMessage.Status
# The statuses a message ends in: the send path (queued, sending) is never touched. Must match
# the `outbox_retention` index's condition word for word, or the planner cannot use it.
FINISHED = [Status.SENT, Status.FAILED, Status.CANCELLED, Status.SUPPRESSED]
PRUNABLE = Q(status__in=[status.value for status in FINISHED], body_pruned_at__isnull=True)
# Metadata a pruned message keeps: what reports count it by, and the flags pages read.
KEPT_METADATA = REPORTED_KEYS | {"erased", "weekly_digest"}

# Callables answering "events before when are counted elsewhere, so may go?" A higher app
# (marketing's analytics rollups) registers one from its wiring; None means "nothing yet".
EventHorizon = Callable[[], datetime | None]
_event_horizons: list[EventHorizon] = []


def register_event_horizon(horizon: EventHorizon) -> None:
    """Events occurred at or after what `horizon()` answers are never pruned."""
    if horizon not in _event_horizons:
        _event_horizons.append(horizon)


@dataclass
class RetentionResult:
    bodies: int = 0  # messages whose content was deleted
    attachments: int = 0  # attachment rows (and their files, after commit)
    sandbox: int = 0  # sandbox copies emptied
    events: int = 0  # delivery events deleted
    batches: int = 0  # transactions
    finished: bool = True  # False: the time budget ran out, the next run carries on

    def as_dict(self) -> dict:
        return asdict(self)


def body_cutoff(*, now: datetime, days: int) -> datetime | None:
    """Messages created before this lose their content; None: kept forever (days = 0)."""
    return now - timedelta(days=days) if days > 0 else None


def event_cutoff(*, now: datetime, days: int) -> datetime | None:
    """Events occurred before this may go: older than the retention age and older than
    every registered horizon. None when kept forever, or while a horizon knows of nothing
    counted yet."""
    if days <= 0:
        return None
    cutoff = now - timedelta(days=days)
    for horizon in _event_horizons:
        limit = horizon()
        if limit is None:
            return None
        cutoff = min(cutoff, limit)
    return cutoff


def events_kept_since(*, now: datetime | None = None) -> datetime | None:
    """For readers of raw events (campaign report, contact timeline): events before this
    moment may have been deleted under the retention policy (None: none ever are)."""
    days = settings.MAILROOM_EVENT_RETENTION_DAYS
    return (now or timezone.now()) - timedelta(days=days) if days > 0 else None


def pruned_notice(message: OutboxMessage) -> str | None:
    """The plain sentence pages show for a message whose content was pruned (None if not)."""
    if message.body_pruned_at is None:
        return None
    when, days = date_format(timezone.localtime(message.body_pruned_at), "DATE_FORMAT"), settings.MAILROOM_BODY_RETENTION_DAYS
    if days <= 0:  # the policy changed since: the date is what matters
        return _("This message's content was deleted on %(date)s under the retention policy.") % {"date": when}
    return ngettext(
        "This message's content was deleted on %(date)s under the retention policy (%(days)s day).",
        "This message's content was deleted on %(date)s under the retention policy (%(days)s days).",
        days,
    ) % {"date": when, "days": days}


def prune_old_messages(
    *,
    now: datetime | None = None,
    body_days: int | None = None,
    event_days: int | None = None,
    batch_size: int | None = None,
    time_budget: float | None = None,
) -> RetentionResult:
    """Prune bodies, then events, batch by batch until nothing is left or the time budget
    (seconds) is spent. At least one batch runs, so every run makes progress."""
    now = now or timezone.now()
    body_days = settings.MAILROOM_BODY_RETENTION_DAYS if body_days is None else body_days
    event_days = settings.MAILROOM_EVENT_RETENTION_DAYS if event_days is None else event_days
    batch_size = batch_size or settings.MAILROOM_RETENTION_BATCH
    budget = settings.MAILROOM_RETENTION_TIME_BUDGET_SECONDS if time_budget is None else time_budget
    if min(body_days, event_days) < 0 or batch_size < 1:
        raise ValueError("retention days must be 0 or more and the batch size 1 or more")
    deadline = time.monotonic() + budget
    result = RetentionResult()
    if (before := body_cutoff(now=now, days=body_days)) is not None:
        _run_batches(lambda: _prune_body_batch(older_than=before, now=now, size=batch_size, result=result), batch_size, deadline, result)
    if result.finished and (before := event_cutoff(now=now, days=event_days)) is not None:
        _run_batches(lambda: _prune_event_batch(older_than=before, size=batch_size, result=result), batch_size, deadline, result)
    return result


def _run_batches(batch: Callable[[], int], size: int, deadline: float, result: RetentionResult) -> None:
    """Batches until one comes back short (nothing is left); out of time after a full one:
    unfinished, and the next run carries on."""
    while done := batch():
        result.batches += 1
        if done < size:
            return
        if time.monotonic() >= deadline:
            result.finished = False
            return


def _prune_body_batch(*, older_than: datetime, now: datetime, size: int, result: RetentionResult) -> int:
    """One transaction: the oldest `size` prunable messages lose their content."""
    with transaction.atomic():
        rows = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(PRUNABLE, created_at__lt=older_than)
            .order_by("created_at", "id")
            .values_list("pk", "has_attachments", "metadata")[:size]
        )
        if not rows:
            return 0
        ids = [pk for pk, _files, _metadata in rows]
        carrying = [pk for pk, has_files, _metadata in rows if has_files]
        if carrying:
            # Row by row through the ORM: each deletion deletes its file after commit (messaging.wiring).
            result.attachments += Attachment.objects.filter(message_id__in=carrying).delete()[0]
        result.sandbox += SandboxMessage.objects.filter(message_id__in=ids).update(body_text="", body_html="", headers={}, source="")
        OutboxBody.objects.filter(message_id__in=ids).delete()
        pruned = OutboxMessage.objects.filter(PRUNABLE, pk__in=ids).update(
            headers={}, sealed_secrets="", has_attachments=False, body_pruned_at=now
        )
        trimmed = [
            OutboxMessage(pk=pk, metadata={key: value for key, value in metadata.items() if key in KEPT_METADATA})
            for pk, _files, metadata in rows
            if isinstance(metadata, dict) and set(metadata) - KEPT_METADATA
        ]
        if trimmed:  # the render context and the like: what the body was made from
            OutboxMessage.objects.bulk_update(trimmed, ["metadata"])
        result.bodies += pruned
        return len(ids)


def _prune_event_batch(*, older_than: datetime, size: int, result: RetentionResult) -> int:
    """One transaction: the oldest `size` events before the cutoff are deleted."""
    with transaction.atomic():
        ids = list(
            DeliveryEvent.objects.filter(occurred_at__lt=older_than).order_by("occurred_at", "id").values_list("pk", flat=True)[:size]
        )
        if not ids:
            return 0
        result.events += DeliveryEvent.objects.filter(pk__in=ids).delete()[0]
        return len(ids)
