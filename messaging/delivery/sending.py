"""The worker path: claim a batch with a lease, gate it, send it through one provider
session, record every outcome in bulk.

Never losing a message rests on three things here: a claim is a lease, not a delete (a
killed worker's batch comes back when the lease expires); every outcome is written in
one statement per batch; and a message is only marked sent after the provider accepted
it. The price is at most one duplicate per message in flight when a worker dies.
"""

import logging
import os
import random
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone

from messaging import site
from messaging.attachments import load_attachments
from messaging.delivery.outbox import render_deferred
from messaging.digest import DIGEST_KEY, HELD
from messaging.metadata import CAMPAIGN_KEY
from messaging.models import (
    Channel,
    Contact,
    DeliveryAttempt,
    DeliveryEvent,
    Frequency,
    OutboxMessage,
    Provider,
    Subscription,
    Suppression,
    Topic,
)
from messaging.providers import ProviderError, Result, session_for
from messaging.providers.base import permanent, transient
from messaging.providers.email.bodies import attach_languages
from messaging.providers.email.headers import message_id_for
from messaging.secrets import SecretUnavailable, attach_secrets
from messaging.webhooks.emit import MESSAGE_EVENTS, emit_many, is_heard, message_event

logger = logging.getLogger(__name__)

Status = OutboxMessage.Status
URGENT_BELOW = OutboxMessage.Priority.NORMAL  # priorities under this are recorded as soon as they are sent

# Sent after a batch's outcomes are committed, only when some of its messages that reached a
# final state (sent, failed, suppressed) belong to a campaign: `campaign_ids` is the set of
# those campaigns. Marketing listens and marks a campaign sent as soon as nothing of it is
# left queued or in flight (messaging never imports marketing).
campaign_messages_recorded = Signal()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease_length() -> timedelta:
    return timedelta(seconds=settings.MAILROOM_LEASE_SECONDS)


# --- providers ---------------------------------------------------------------------------
def usable_providers(channel: str) -> list[Provider]:
    """Active providers of the channel that are not resting, best first. With none
    configured at all, the sandbox takes the channel when it is the default."""
    now = timezone.now()
    configured = Provider.objects.filter(channel=channel, is_active=True)
    usable = list(configured.filter(Q(resting_until__isnull=True) | Q(resting_until__lte=now)).order_by("priority", "id"))
    if not usable and not configured.exists() and site.current().default_provider == "sandbox":
        sandbox, _created = Provider.objects.get_or_create(
            name=f"Sandbox {Channel(channel).label}", defaults={"channel": channel, "kind": Provider.Kind.SANDBOX, "priority": 100}
        )
        usable = [sandbox]
    return usable


def take_tokens(*, provider: Provider, wanted: int) -> int:
    """Token buckets per second and per hour, shared by every worker through the provider row."""
    if not (provider.rate_per_second or provider.rate_per_hour):
        return wanted  # no transaction: on SQLite that would wait for the write lock on every batch
    with transaction.atomic():
        return _take_tokens(provider, wanted)


def _take_tokens(provider: Provider, wanted: int) -> int:
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    now = timezone.now()
    elapsed = (now - locked.tokens_at).total_seconds() if locked.tokens_at else None
    granted = wanted
    if locked.rate_per_second:
        cap = float(locked.rate_per_second)
        locked.second_tokens = cap if elapsed is None else min(cap, locked.second_tokens + elapsed * cap)
        granted = min(granted, int(locked.second_tokens))
    if locked.rate_per_hour:
        cap = float(locked.rate_per_hour)
        locked.hour_tokens = cap if elapsed is None else min(cap, locked.hour_tokens + elapsed * cap / 3600)
        granted = min(granted, int(locked.hour_tokens))
    granted = max(granted, 0)
    if locked.rate_per_second:
        locked.second_tokens -= granted
    if locked.rate_per_hour:
        locked.hour_tokens -= granted
    locked.tokens_at = now
    locked.save(update_fields=["second_tokens", "hour_tokens", "tokens_at"])
    return granted


def give_back_tokens(*, provider: Provider, count: int) -> None:
    if count and (provider.rate_per_second or provider.rate_per_hour):
        Provider.objects.filter(pk=provider.pk).update(second_tokens=F("second_tokens") + count, hour_tokens=F("hour_tokens") + count)


# --- claiming ----------------------------------------------------------------------------
PRIORITIES = sorted(OutboxMessage.Priority.values)  # the only ones a message can have (enqueue checks)


def has_pending(channel: str) -> bool:
    """Anything queued or sending on the channel: one probe of the (channel, status) index.
    A drain visits every channel each pass; an idle one costs this probe, not a provider
    lookup (about 1 ms: three idle channels were 5 % of a sending worker's time), a token
    take (a write on a rate-limited provider) and a claim under the write lock."""
    return OutboxMessage.objects.filter(channel=channel, status__in=[Status.QUEUED, Status.SENDING]).exists()


def claim_batch(*, channel: str, limit: int, owner: str) -> list[OutboxMessage]:
    """Lease up to `limit` due messages. PostgreSQL: FOR UPDATE SKIP LOCKED, so clusters
    never wait on each other's rows; SQLite: the IMMEDIATE transaction serialises claims."""
    mine = OutboxMessage.objects.filter(channel=channel)
    lock = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        now = timezone.now()
        ids = _queued_ids(mine, now=now, limit=limit, lock=lock)
        if len(ids) < limit:
            expired = mine.filter(status=Status.SENDING, lease_until__lt=now).order_by("lease_until", "id")
            if lock:
                expired = expired.select_for_update(skip_locked=True)
            ids += list(expired.values_list("id", flat=True)[: limit - len(ids)])
        if not ids:
            return []
        lease_until = now + lease_length()
        OutboxMessage.objects.filter(id__in_batch=ids).update(
            status=Status.SENDING, lease_until=lease_until, lease_owner=owner, attempts=F("attempts") + 1
        )
    # Read back by the lease itself (this owner, this instant: outbox_sending_leases) rather than by
    # the ids again: Django preparing 500 IN parameters cost more than the rows' index
    # lookups. The id check only matters under a frozen clock (two claims, one instant).
    claimed = set(ids)
    leased = OutboxMessage.objects.filter(status=Status.SENDING, lease_until=lease_until, lease_owner=owner).order_by("priority", "id")
    return [message for message in leased.with_bodies().load() if message.id in claimed]


def _queued_ids(mine, *, now, limit: int, lock: bool) -> list[int]:
    """Due queued ids, most urgent first, then by next attempt: one query per priority, each
    a range scan of the partial outbox_queued index (priority, next_attempt_at) that stops
    after `limit` rows. With the index led by status and time instead (and the priorities
    found by a DISTINCT over every due row), each claim read the whole due backlog: a
    million queued messages cost every batch of 500 a pass over a million index entries."""
    ids: list[int] = []
    for priority in PRIORITIES:
        rows = mine.filter(status=Status.QUEUED, priority=priority, next_attempt_at__lte=now).order_by("next_attempt_at")
        if lock:
            rows = rows.select_for_update(skip_locked=True)
        ids += rows.values_list("id", flat=True)[: limit - len(ids)]
        if len(ids) >= limit:
            break
    return ids


# --- outcomes ----------------------------------------------------------------------------
@dataclass
class Outcome:
    message: OutboxMessage
    result: Result
    provider: Provider | None
    duration_ms: float = 0.0
    suppressed: bool = False


def backoff_seconds(message: OutboxMessage) -> float:
    """60/120/240 s by default (per priority in settings), with ±20 % jitter so retries of
    one failed batch do not come back as one thundering herd."""
    steps = settings.MAILROOM_RETRY_BACKOFF.get(message.priority, settings.MAILROOM_RETRY_BACKOFF["default"])
    base = steps[min(message.attempts, len(steps)) - 1] if message.attempts else steps[0]
    return base * random.uniform(0.8, 1.2)


def _apply(outcome: Outcome, now) -> None:
    message, result = outcome.message, outcome.result
    message.lease_until, message.lease_owner = None, ""
    if outcome.provider is not None:
        message.provider = outcome.provider
    if outcome.suppressed:
        message.status, message.error = Status.SUPPRESSED, result.response
    elif result.sent:
        message.status, message.error, message.sent_at = Status.SENT, "", now
        message.provider_message_id = result.provider_message_id[:200]
    elif result.outcome == DeliveryAttempt.Outcome.TRANSIENT and message.attempts < message.max_attempts:
        message.status, message.error = Status.QUEUED, result.response[:2000]
        message.next_attempt_at = now + timedelta(seconds=backoff_seconds(message))
    else:
        message.status = Status.FAILED
        gave_up = result.outcome == DeliveryAttempt.Outcome.TRANSIENT
        message.error = (f"gave up after {message.attempts} attempts: " if gave_up else "") + result.response[:2000]


def record_outcomes(outcomes: list[Outcome]) -> None:
    """Statuses, attempts, provider health and hard-bounce suppressions: a few statements per batch."""
    if not outcomes:
        return
    now = timezone.now()
    for outcome in outcomes:
        _apply(outcome, now)
    bounces = [
        Suppression(
            address=o.message.to_address, channel=o.message.channel, reason=Suppression.Reason.HARD_BOUNCE, note=o.result.response[:300]
        )
        for o in outcomes
        if o.result.hard_bounce
    ]
    # A hard bounce at send time (SMTP 5xx, the sandbox's refused addresses) is a bounce of
    # that message, counted like a provider's bounce webhook: once, on the message, and so
    # on its campaign or automation.
    bounce_events = [
        DeliveryEvent(
            message=o.message,
            kind=DeliveryEvent.Kind.BOUNCED,
            external_id=f"bounce:{o.message.pk}",
            payload={"response": o.result.response[:300], "at_send": True},
            occurred_at=now,
        )
        for o in outcomes
        if o.result.hard_bounce and not o.result.sent
    ]
    by_provider: dict[int, dict[str, int]] = defaultdict(lambda: {"sent": 0, "failed": 0, "retried": 0})
    for o in outcomes:
        if o.provider is not None and not o.suppressed:
            by_provider[o.provider.id]["sent" if o.result.sent else "failed"] += 1
            if not o.result.sent and o.message.status == Status.QUEUED:  # a temporary failure, tried again later
                by_provider[o.provider.id]["retried"] += 1
    # A secret is kept only while the message may still be sent: sent, failed or suppressed
    # drops it (a transient failure that will be retried keeps it).
    spent = [o.message.id for o in outcomes if o.message.is_sensitive and o.message.status != Status.QUEUED]
    with transaction.atomic():
        _write_statuses([o.message for o in outcomes])
        if spent:
            OutboxMessage.objects.filter(pk__in_batch=spent).update(sealed_secrets="")
        _write_attempts([o for o in outcomes if not o.suppressed], now)
        if bounces:
            Suppression.objects.bulk_create(bounces, ignore_conflicts=True)
            DeliveryEvent.objects.bulk_create(bounce_events, ignore_conflicts=True)
        for provider_id, counts in by_provider.items():
            changes = {"sent_count": F("sent_count") + counts["sent"], "failed_count": F("failed_count") + counts["failed"]}
            if counts["retried"]:
                changes["retried_count"] = F("retried_count") + counts["retried"]
            if counts["sent"]:
                changes |= {"last_success_at": now, "consecutive_failures": 0}
            Provider.objects.filter(pk=provider_id).update(**changes)
        _announce_webhooks(outcomes, bounce_events)  # with the statuses they announce, or neither
    if logger.isEnabledFor(logging.DEBUG):
        for o in outcomes:
            logger.debug("message %s %s via %s: %s", o.message.pk, o.message.status, o.provider, o.result.response[:200])
    failed = [o for o in outcomes if o.message.status in (Status.FAILED, Status.SUPPRESSED)]
    for o in failed:
        logger.info("message %s %s: %s", o.message.pk, o.message.status, o.message.error[:200])
    _announce_campaign_messages(outcomes)


def _announce_webhooks(outcomes: list[Outcome], bounce_events: list[DeliveryEvent]) -> None:
    """message.sent / message.failed / message.bounced to webhook endpoints (nothing when none listens)."""
    if not any(is_heard(MESSAGE_EVENTS[kind]) for kind in ("sent", "failed", "bounced")):
        return  # not even the events built: a dict per message of a batch nobody hears about
    events = [
        message_event(o.message.status, message_id=o.message.pk, channel=o.message.channel)
        for o in outcomes
        if o.message.status in (Status.SENT, Status.FAILED)
    ]
    events += [message_event(event.kind, message_id=event.message.pk, at_send=True) for event in bounce_events]
    emit_many([event for event in events if event])


def _announce_campaign_messages(outcomes: list[Outcome]) -> None:
    """Tell the listeners which campaigns just had messages finish. A dict lookup per message,
    no query here; a batch without campaign messages sends nothing. A listener's error is
    logged, never raised: the outcomes are recorded and must not be recorded twice."""
    campaign_ids = {
        campaign_id
        for o in outcomes
        if o.message.status != Status.QUEUED
        and isinstance(o.message.metadata, dict)
        and (campaign_id := o.message.metadata.get(CAMPAIGN_KEY))
    }
    if not campaign_ids:
        return
    for receiver, response in campaign_messages_recorded.send_robust(sender=OutboxMessage, campaign_ids=campaign_ids):
        if isinstance(response, Exception):
            logger.error("after recording a batch of campaigns %s: %s failed: %r", sorted(campaign_ids), receiver, response)


def record_outcomes_durably(outcomes: list[Outcome]) -> None:
    """record_outcomes, retried while the database cannot be reached. These messages have
    already reached the provider: giving up would let their leases expire and send them
    again once the database is back. Retries stop after MAILROOM_RECORD_RETRY_SECONDS,
    well inside the task timeout."""
    deadline = time.monotonic() + settings.MAILROOM_RECORD_RETRY_SECONDS
    pause = 0.5
    while True:
        try:
            record_outcomes(outcomes)
            return
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() + pause > deadline or connection.in_atomic_block:
                raise
            logger.warning("database unreachable while recording %s outcomes (%s); retrying in %.1f s", len(outcomes), error, pause)
            connection.close()  # never reuse a broken connection
            time.sleep(pause)
            pause = min(pause * 2, 2.0)  # short: another worker may reclaim the expired leases


def _write_attempts(outcomes: list[Outcome], now) -> None:
    """The DeliveryAttempt rows, as one executemany INSERT: bulk_create spent more time
    building 500 model instances and their SQL than the database spent storing them."""
    if not outcomes:
        return
    meta, quote = DeliveryAttempt._meta, connection.ops.quote_name
    fields = ["message", "provider", "outcome", "response", "duration_ms", "created_at"]
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    created_at = connection.ops.adapt_datetimefield_value(now)
    rows = [
        (o.message.id, o.provider.id if o.provider else None, o.result.outcome, o.result.response[:2000], o.duration_ms, created_at)
        for o in outcomes
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement over arrays: see _write_statuses
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT * FROM unnest("
                "%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::double precision[], %s::timestamptz[])",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            cursor.executemany(sql, rows)


def _write_statuses(messages: list[OutboxMessage]) -> None:
    """One parameterised UPDATE run for every row (executemany): Django's bulk_update
    builds a CASE per field and row, which cost ~30 ms per message on a 500-row batch."""
    table = OutboxMessage._meta.db_table
    adapted: dict = {None: None}  # a batch shares a few instants (sent_at is one `now`): each adapted once

    def adapt(value):
        if value not in adapted:
            adapted[value] = connection.ops.adapt_datetimefield_value(value)
        return adapted[value]

    rows = [
        (m.status, m.error, adapt(m.sent_at), adapt(m.next_attempt_at), m.provider_id, m.provider_message_id, m.message_id, m.id)
        for m in messages
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One UPDATE joined to the batch as arrays: 500 statements, even pipelined, cost
            # the server a statement's overhead each (0.18 ms a message against 0.07 here).
            cursor.execute(
                f"UPDATE {table} AS o SET status = v.status, error = v.error, sent_at = v.sent_at, "
                "next_attempt_at = v.next_attempt_at, lease_until = NULL, lease_owner = '', provider_id = v.provider_id, "
                "provider_message_id = v.provider_message_id, message_id = v.message_id FROM unnest("
                "%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::bigint[], %s::text[], %s::text[], %s::bigint[]"
                ") AS v(status, error, sent_at, next_attempt_at, provider_id, provider_message_id, message_id, id) WHERE o.id = v.id",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, error = %s, sent_at = %s, next_attempt_at = %s, lease_until = NULL, "
                "lease_owner = '', provider_id = %s, provider_message_id = %s, message_id = %s WHERE id = %s",
                rows,
            )


def provider_failed(provider: Provider, error: str, *, failures: int = 1) -> None:
    """Count failures; after N in a row the provider rests and the next one takes over."""
    now = timezone.now()
    Provider.objects.filter(pk=provider.pk).update(
        consecutive_failures=F("consecutive_failures") + failures, last_failure_at=now, last_error=error[:2000]
    )
    provider.refresh_from_db(fields=["consecutive_failures"])
    if provider.consecutive_failures >= settings.MAILROOM_FAILOVER_AFTER:
        Provider.objects.filter(pk=provider.pk).update(resting_until=now + timedelta(seconds=settings.MAILROOM_PROVIDER_REST_SECONDS))
        logger.warning("provider %s resting after %s failures: %s", provider, provider.consecutive_failures, error)


# --- sending -----------------------------------------------------------------------------
WEEK = timedelta(days=7)


def time_sensitive_topic_ids() -> set[int]:
    return set(Topic.objects.filter(time_sensitive=True).values_list("pk", flat=True))


def gate(messages: list[OutboxMessage]) -> tuple[list[OutboxMessage], list[Outcome]]:
    """Send-time checks: suppression for every message; for marketing ones, consent for the
    topic and channel and the contact's own choices from the preference center:

    - paused (`Contact.paused_until` in the future): the message ends `suppressed` with the
      reason, it is not deferred. A pause means "not now"; holding every campaign until the
      day it ends would deliver a pile of stale offers at once.
    - weekly digest only (`Contact.marketing_frequency`): every marketing email is held
      (`suppressed` with the error `messaging.digest.HELD`) and goes in the contact's Monday
      digest (messaging.digest), the digest itself excepted; on other channels, at most one
      marketing message in 7 days, later ones end `suppressed` with the reason.

    Transactional messages are never held by either, nor are messages on a time-sensitive
    topic (reminders: consent still required). Two queries per batch with marketing
    messages (four when a contact in it paused or chose the weekly digest), never one per
    message."""
    if not messages:
        return [], []
    channel = messages[0].channel
    keys = Suppression.keys_for({m.to_address for m in messages})  # plain, and hashed for erased contacts
    suppressed = {
        keys[address]: reason
        for address, reason in Suppression.objects.filter(channel=channel, address__in_batch=list(keys)).values_list("address", "reason")
    }
    marketing = [m for m in messages if m.is_marketing]
    consented, paused, weekly, sent_this_week, time_sensitive = set(), {}, set(), set(), set()
    now = timezone.now()
    if marketing:
        contact_ids = {m.contact_id for m in marketing}
        consented = set(
            Subscription.objects.filter(
                channel=channel, status=Subscription.Status.SUBSCRIBED, contact_id__in_batch=contact_ids
            ).values_list("contact_id", "topic_id")
        )
        held = Contact.objects.filter(pk__in_batch=contact_ids).filter(Q(paused_until__gt=now) | Q(marketing_frequency=Frequency.WEEKLY))
        for contact_id, paused_until, frequency in held.values_list("pk", "paused_until", "marketing_frequency"):
            if paused_until is not None and paused_until > now:
                paused[contact_id] = paused_until
            if frequency == Frequency.WEEKLY:
                weekly.add(contact_id)
        if paused or weekly:  # only then does a topic's time-sensitivity change anything
            time_sensitive = time_sensitive_topic_ids()
        if weekly:
            sent_this_week = set(
                OutboxMessage.objects.filter(
                    contact_id__in=weekly, channel=channel, is_marketing=True, status=Status.SENT, sent_at__gte=now - WEEK
                )
                .exclude(topic_id__in=time_sensitive)
                .values_list("contact_id", flat=True)
            )
    ready, stopped = [], []
    for message in messages:
        if message.attempts > message.max_attempts:
            stopped.append(Outcome(message, permanent(f"gave up: the worker stopped while sending (attempt {message.attempts})"), None))
        elif message.to_address in suppressed:
            stopped.append(Outcome(message, permanent(f"suppressed address ({suppressed[message.to_address]})"), None, suppressed=True))
        elif not message.is_marketing:
            ready.append(message)
        elif (message.contact_id, message.topic_id) not in consented:
            stopped.append(Outcome(message, permanent("no consent for this topic on this channel"), None, suppressed=True))
        elif message.topic_id in time_sensitive:
            ready.append(message)  # consented; a reminder held until next week would be useless
        elif message.contact_id in paused:
            until = paused[message.contact_id].isoformat(timespec="minutes")
            stopped.append(Outcome(message, permanent(f"the contact paused marketing messages until {until}"), None, suppressed=True))
        elif message.contact_id in weekly and DIGEST_KEY in (message.metadata or {}):
            ready.append(message)  # the digest itself (the key is internal: the API cannot set it)
        elif message.contact_id in weekly and message.channel == Channel.EMAIL:
            stopped.append(Outcome(message, permanent(HELD), None, suppressed=True))  # goes out in the Monday digest
        elif message.contact_id in weekly and message.contact_id in sent_this_week:
            reason = "the contact chose the weekly digest: a marketing message already went this week"
            stopped.append(Outcome(message, permanent(reason), None, suppressed=True))
        else:
            if message.contact_id in weekly:
                sent_this_week.add(message.contact_id)  # the next one in this batch waits a week
            ready.append(message)
    return ready, stopped


def deliver(
    messages: list[OutboxMessage],
    providers: list[Provider],
    *,
    record_early: Callable[[list[Outcome]], None] | None = None,
    metered: bool = False,
) -> list[Outcome]:
    """Send through the first provider that works; fail over to the next when one keeps
    failing. Returns the outcomes still to record. With `record_early`, the outcomes of a
    batch's urgent messages (transactional, high: claimed first) are handed to it as soon
    as the last of them is sent, so a receipt claimed with 499 campaign emails is marked
    sent without waiting for them.

    `metered`: the batch was sized by the first provider's tokens (send_due_messages).
    Each provider failed over to then takes its own tokens; what is over its limit tries
    the next one or, with none left, goes back to the queue uncharged (`_hold`). A provider
    gives back the tokens of the messages it never sent."""
    ready, outcomes = gate(messages)
    if ready:
        ready, broken = render_deferred(ready)
        outcomes += [Outcome(message, permanent(error), None) for message, error in broken]
    if any(message.is_sensitive for message in ready):  # only then: the fast path pays nothing
        ready, locked = _unseal_secrets(ready)
        outcomes += locked
    if any(message.has_attachments for message in ready):  # likewise: one query, for those only
        load_attachments(ready)
    recorded = 0
    for message in ready:
        if not message.message_id and message.channel == Channel.EMAIL:
            message.message_id = message_id_for(message)
    attach_languages(ready)  # the footer speaks each contact's language
    pending = ready
    lease_renewed_at = time.monotonic()
    renew_every = settings.MAILROOM_LEASE_SECONDS / 3  # read once a batch, not once a message
    over_limit: set[int] = set()
    unusable = ""  # why the last provider could not be used: the messages left waiting say it
    for index, provider in enumerate(providers):
        if not pending:
            break
        over: list[OutboxMessage] = []
        if metered and index > 0:
            granted = take_tokens(provider=provider, wanted=len(pending))
            pending, over = pending[:granted], pending[granted:]
            over_limit.update(m.id for m in over)
        has_next = index + 1 < len(providers)
        failures_in_row, leftover = 0, []
        try:
            with session_for(provider) as session:
                session.begin(pending)
                for position, message in enumerate(pending):
                    following = pending[position + 1] if position + 1 < len(pending) else None
                    started = time.perf_counter()
                    try:
                        result = session.send_ahead(message, following)
                    except ProviderError:
                        raise
                    except Exception as error:  # a bug or odd input must not lose the batch
                        logger.exception("message %s: unexpected error", message.pk)
                        result = transient(f"unexpected error: {error!r}")
                    outcomes.append(Outcome(message, result, provider, 1000 * (time.perf_counter() - started)))
                    if (
                        record_early is not None
                        and message.priority < URGENT_BELOW
                        and (following is None or following.priority >= URGENT_BELOW)
                    ):
                        session.flush()  # the sandbox stores its rows at the end of a batch
                        record_early(outcomes[recorded:])
                        recorded = len(outcomes)
                    failures_in_row = failures_in_row + 1 if result.outcome == "transient" else 0
                    if has_next and failures_in_row >= settings.MAILROOM_FAILOVER_AFTER:
                        provider_failed(provider, result.response, failures=failures_in_row)
                        leftover = pending[position + 1 :]
                        break
                    if time.monotonic() - lease_renewed_at > renew_every:
                        _renew_lease(messages)  # all of it: a sent message stays leased until recorded
                        lease_renewed_at = time.monotonic()
        except ProviderError as error:
            logger.warning("provider %s unusable: %s", provider, error)
            unusable = f" ({provider.name}: {error})"
            provider_failed(provider, str(error))
            done = {o.message.id for o in outcomes}
            leftover = [m for m in pending if m.id not in done]
            if error.permanent and not has_next:
                outcomes += [Outcome(m, permanent(f"provider misconfigured: {error}"), provider) for m in leftover]
                leftover = []
        if metered:
            give_back_tokens(provider=provider, count=len(leftover))
        pending = leftover + over
    _hold([m for m in pending if m.id in over_limit])
    waiting = transient(f"no provider available for this channel{unusable}")
    outcomes += [Outcome(m, waiting, None) for m in pending if m.id not in over_limit]
    return outcomes[recorded:]


def _hold(messages: list[OutboxMessage]) -> None:
    """Put back in the queue, as if never claimed, messages no provider had tokens for:
    a rate limit is not a failed attempt."""
    if messages:
        OutboxMessage.objects.filter(pk__in=[m.pk for m in messages], status=Status.SENDING).update(
            status=Status.QUEUED, lease_until=None, lease_owner="", attempts=F("attempts") - 1
        )


def _unseal_secrets(messages: list[OutboxMessage]) -> tuple[list[OutboxMessage], list[Outcome]]:
    """Attach the secrets of the batch's sensitive messages to them, in memory only; a
    message whose seal is gone or cannot be opened fails with the reason (never goes out
    with a marker instead of its link)."""
    ready, locked = [], []
    for message in messages:
        if message.is_sensitive:
            try:
                attach_secrets(message)
            except SecretUnavailable as error:
                locked.append(Outcome(message, permanent(str(error)), None))
                continue
        ready.append(message)
    return ready, locked


def _renew_lease(messages: list[OutboxMessage]) -> None:
    """Extend the batch's lease. A database outage must not abort a batch half sent (its
    outcomes would be lost and the sent half sent again): log it and go on sending; the
    outcomes are recorded once the database is back (record_outcomes_durably)."""
    if not messages:
        return
    try:
        OutboxMessage.objects.filter(pk__in_batch=[m.id for m in messages]).update(lease_until=timezone.now() + lease_length())
    except (OperationalError, InterfaceError) as error:
        if connection.in_atomic_block:
            raise
        logger.warning("could not renew the lease of %s messages: %s", len(messages), error)
        connection.close()


def send_due_messages(*, limit: int = 500, channel: str | None = None, owner: str | None = None, time_budget: float | None = None) -> int:
    """Claim and send batches until nothing is due (or the time budget is spent); returns
    how many messages were handled."""
    owner = owner or worker_name()
    channels = [channel] if channel else list(Channel.values)
    deadline = time.monotonic() + time_budget if time_budget else None
    total = 0
    while True:
        handled = 0
        for current in channels:
            if not has_pending(current):
                continue
            providers = usable_providers(current)
            if not providers:
                continue
            granted = take_tokens(provider=providers[0], wanted=limit)
            if not granted:
                continue
            batch = claim_batch(channel=current, limit=granted, owner=owner)
            give_back_tokens(provider=providers[0], count=granted - len(batch))
            if batch:
                record_outcomes_durably(deliver(batch, providers, record_early=record_outcomes_durably, metered=True))
                handled += len(batch)
        total += handled
        if not handled or (deadline is not None and time.monotonic() > deadline):
            return total


def deliver_now(message: OutboxMessage) -> OutboxMessage:
    """Send one queued message right away (console test sends), leased so no worker races it."""
    now = timezone.now()
    leased = OutboxMessage.objects.filter(pk=message.pk, status=Status.QUEUED).update(
        status=Status.SENDING, lease_until=now + lease_length(), lease_owner=f"now-{message.pk}", attempts=F("attempts") + 1
    )
    if leased:
        message.refresh_from_db()
        record_outcomes(deliver([message], usable_providers(message.channel)))
    message.refresh_from_db()
    return message
