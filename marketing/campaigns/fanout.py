"""Fan-out: from an audience to CampaignRecipient rows and queued outbox messages, set-based
and resumable, each row written once.

1. `prepare_recipients` — one INSERT … SELECT copies the eligibility queryset (segments
   minus exclusions, with the skip reason of each contact) into CampaignRecipient, unique
   per (campaign, contact). Each eligible recipient gets the id of its future outbox message
   there and then, drawn from the outbox's own id sequence (`messaging.delivery.bulk`
   reserves them: this module never names the outbox's table). A/B arms and send times are
   assigned with a few UPDATEs (per time zone, never per contact, unless a throttle spreads
   them one by one). One transaction.
2. `create_messages` — the recipient ids are cut into `FanoutChunk`s up front; a worker
   claims an undone chunk (SKIP LOCKED) and, in one transaction, has
   `messaging.delivery.bulk.insert_messages_from_select` INSERT … SELECT its messages into
   the outbox under the reserved ids (ON CONFLICT DO NOTHING; the dedup key
   campaign:<id>:<contact> also guards) and marks it done. On PostgreSQL `fan_out` runs
   `MAILROOM_FANOUT_WORKERS` such loops side by side, and a chunk's commit does not wait for
   the disk (`_commit_without_waiting_for_disk`: a chunk lost in a crash is redone whole). No recipient row is touched again:
   linking them by UPDATE afterwards rewrote every row and its indexes, a third of the time.
   The bodies are not rendered here: the row carries the
   pinned version in `metadata["render"]` (the contact's language variant, chosen by one
   CASE on `contact.locale` among the versions pinned at submission: campaigns.languages)
   and the worker that sends it merges it
   (`messaging.delivery.outbox.render_deferred`), spreading the per-recipient work over every worker
   instead of holding the fan-out for ~0.2 ms × N.

A crash (or a pause) loses nothing: a chunk is done exactly when its messages are committed,
and running the fan-out again takes the chunks left. Each chunk holds a share lock on the
campaign row and stops when the campaign is no longer sending, so pause and cancel (which
lock it for update) wait for the chunks in flight and stop the next ones.
"""

import json
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from marketing.campaigns.audience import with_eligibility
from marketing.campaigns.languages import metadata_case_sql, pinned_variants
from marketing.models import Campaign, CampaignRecipient, CampaignVariant, FanoutChunk
from messaging.delivery.bulk import insert_messages_from_select, json_sql, keep_reserved_ids, reserved_id_sql
from messaging.delivery.work import after_commit
from messaging.metadata import CAMPAIGN_KEY
from messaging.models import Channel, Contact

logger = logging.getLogger(__name__)

Status = CampaignRecipient.Status
ID_CHUNK = 5000  # ids per `IN (…)` list, well under SQLite's variable limit


@dataclass
class FanoutResult:
    messages: int = 0
    stopped: bool = False
    finished: bool = False  # this pass ran to its end and called `finish_fanout`


def dedup_prefix(campaign_id: int) -> str:
    return f"campaign:{campaign_id}:"


def _chunks(ids: list[int], size: int = ID_CHUNK):
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# --- 1. recipients ---------------------------------------------------------------------
def insert_recipients(campaign: Campaign, *, variant_id: int | None = None) -> int:
    """INSERT … SELECT every audience contact: eligible ones queued (with `variant_id`) and given
    the id of their future outbox message (reserved by messaging.delivery.bulk), the others
    skipped with their reason. Called once per campaign (`prepare_recipients`, under the
    campaign's lock, only while its fan-out has not started), so no row exists yet: a plain
    INSERT, where ON CONFLICT DO NOTHING made each of a million rows a speculative insert
    (another probe and WAL record a row). Unique per campaign and contact all the same."""
    select_sql, params = with_eligibility(campaign).order_by().values("id", "skip").query.sql_with_params()
    if connection.vendor == "postgresql":
        # A fence: without it PostgreSQL pulls the subquery up and computes `skip` (its
        # consent and suppression probes) once for each of the three places that read it.
        select_sql += " OFFSET 0"
    table = CampaignRecipient._meta.db_table
    with connection.cursor() as cursor:
        next_id_sql, next_id_params = reserved_id_sql(cursor, order_by="e.id")
        sql = (
            f"INSERT INTO {table} (campaign_id, contact_id, variant_id, is_test, status, skip_reason, message_id) "
            f"SELECT %s, e.id, %s, %s, CASE WHEN e.skip = '' THEN %s ELSE %s END, e.skip, "
            f"CASE WHEN e.skip = '' THEN {next_id_sql} END FROM ({select_sql}) e"
        )
        cursor.execute(sql, [campaign.pk, variant_id, False, Status.QUEUED, Status.SKIPPED, *next_id_params, *params])
        inserted = cursor.rowcount
        keep_reserved_ids(cursor, highest=lambda: _highest_message_id(cursor, campaign))
        return inserted


def _highest_message_id(cursor, campaign: Campaign) -> int | None:
    cursor.execute(f"SELECT MAX(message_id) FROM {CampaignRecipient._meta.db_table} WHERE campaign_id = %s", [campaign.pk])
    return cursor.fetchone()[0]


def is_ab_test(campaign: Campaign, variants: list[CampaignVariant]) -> bool:
    return bool(campaign.ab_test_share) and len(variants) >= 2


def assign_variants(campaign: Campaign) -> None:
    """A/B test: a seeded shuffle picks the test share, dealt round-robin over the variants;
    the rest wait for the winner (holdout). Without a test, `insert_recipients` already gave
    every recipient variant A (or none): no UPDATE of every row."""
    variants = list(campaign.variants.order_by("label"))
    queued = CampaignRecipient.objects.filter(campaign=campaign, status=Status.QUEUED)
    if not is_ab_test(campaign, variants):
        return
    ids = list(queued.order_by("pk").values_list("pk", flat=True))
    random.Random(campaign.pk).shuffle(ids)
    test_size = min(len(ids), max(len(variants), round(len(ids) * campaign.ab_test_share / 100)))
    test, rest = ids[:test_size], ids[test_size:]
    for index, variant in enumerate(variants):
        for chunk in _chunks(sorted(test[index :: len(variants)])):
            CampaignRecipient.objects.filter(pk__in=chunk).update(variant=variant, is_test=True)
    for chunk in _chunks(sorted(rest)):
        CampaignRecipient.objects.filter(pk__in=chunk).update(status=Status.HOLDOUT, variant=None)


def _zone(name: str):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def in_quiet_hours(local: datetime, start: time | None, end: time | None) -> bool:
    if start is None or end is None or start == end:
        return False
    moment = local.timetz().replace(tzinfo=None)
    return start <= moment < end if start < end else (moment >= start or moment < end)


def after_quiet_hours(local: datetime, start: time | None, end: time | None) -> datetime:
    """The same instant, or the end of the quiet hours it falls in (in the same zone)."""
    if not in_quiet_hours(local, start, end):
        return local
    day = local.date()
    if start > end and local.timetz().replace(tzinfo=None) >= start:  # 22:00–08:00, and it is 23:00
        day += timedelta(days=1)
    return datetime.combine(day, end, tzinfo=local.tzinfo)


def local_send_time(campaign: Campaign, zone_name: str, now: datetime) -> datetime:
    """ "09:00 local" on the campaign's day in that zone; when that moment has already passed
    there (the campaign started late), the same time the next day."""
    zone = _zone(zone_name)
    moment = datetime.combine(campaign.send_at.astimezone(UTC).date(), campaign.local_time, tzinfo=zone)
    if moment < now:
        moment += timedelta(days=1)
    return moment


def schedule_recipients(campaign: Campaign, *, status: str = Status.QUEUED, now: datetime | None = None) -> None:
    """Set each recipient's send time: per time zone (one UPDATE each) for local sends and
    quiet hours, then, with a throttle, one slot per recipient at `max per hour`."""
    now = now or timezone.now()
    recipients = CampaignRecipient.objects.filter(campaign=campaign, status=status)
    local = campaign.send_mode == Campaign.SendMode.LOCAL and campaign.local_time and campaign.send_at
    quiet = campaign.quiet_hours_start is not None and campaign.quiet_hours_end is not None
    if local or quiet:
        zones = Contact.objects.filter(pk__in=recipients.values("contact_id")).order_by().values_list("timezone", flat=True).distinct()
        for zone_name in list(zones):
            moment = local_send_time(campaign, zone_name, now) if local else max(campaign.send_at or now, now).astimezone(_zone(zone_name))
            moment = after_quiet_hours(moment, campaign.quiet_hours_start, campaign.quiet_hours_end)
            recipients.filter(contact__timezone=zone_name).update(scheduled_at=moment)
    if campaign.throttle_per_hour:
        _throttle(campaign, recipients, now=now)


def _throttle(campaign: Campaign, recipients, *, now: datetime) -> None:
    """Spread sends evenly: recipient k no earlier than start + k × (3600 / max per hour) s."""
    gap = timedelta(seconds=3600 / campaign.throttle_per_hour)
    start = max(campaign.send_at or now, now)
    rows = list(recipients.order_by("scheduled_at", "pk").values_list("pk", "scheduled_at", "contact__timezone"))
    updates = []
    for k, (pk, scheduled_at, zone_name) in enumerate(rows):
        moment = max(scheduled_at or start, start + k * gap)
        if campaign.quiet_hours_start is not None and campaign.quiet_hours_end is not None:
            moment = after_quiet_hours(moment.astimezone(_zone(zone_name)), campaign.quiet_hours_start, campaign.quiet_hours_end)
        updates.append((connection.ops.adapt_datetimefield_value(moment), pk))
    table = CampaignRecipient._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET scheduled_at = %s WHERE id = %s", updates)


@transaction.atomic
def prepare_recipients(*, campaign: Campaign) -> int:
    campaign = Campaign.objects.select_for_update().select_related("topic").get(pk=campaign.pk)
    if campaign.state != Campaign.State.SENDING or campaign.fanout != Campaign.Fanout.NOT_STARTED:
        return campaign.recipient_count
    variants = list(campaign.variants.order_by("label"))
    insert_recipients(campaign, variant_id=variants[0].pk if variants and not is_ab_test(campaign, variants) else None)
    if connection.vendor == "postgresql":
        # Fresh statistics, or the planner walks every pending row of the campaign for each
        # id-range chunk below (a million rows: minutes instead of seconds), and for the first
        # and last recipient of `plan_chunks` (a quarter of a second each).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {CampaignRecipient._meta.db_table}")
    assign_variants(campaign)
    schedule_recipients(campaign)
    plan_chunks(campaign)
    campaign.recipient_count = CampaignRecipient.objects.filter(campaign=campaign).exclude(status=Status.SKIPPED).count()
    campaign.fanout = Campaign.Fanout.RUNNING
    campaign.save(update_fields=["recipient_count", "fanout", "updated_at"])
    return campaign.recipient_count


# --- 2. messages -----------------------------------------------------------------------
def _pinned_version_id(campaign: Campaign, variant: CampaignVariant | None) -> int | None:
    return variant.template_version_id if variant and variant.template_version_id else campaign.template_version_id


def _variant_metadata(campaign: Campaign, variant: CampaignVariant | None, version_id: int | None = None) -> str:
    version_id = version_id or _pinned_version_id(campaign, variant)
    render = {"version": version_id, "subject": variant.subject if variant else ""}
    if campaign.context:
        render["context"] = campaign.context
    return json.dumps({CAMPAIGN_KEY: campaign.pk, "variant": variant.label if variant else "", "render": render})


def _metadata_sql(campaign: Campaign, variant: CampaignVariant | None) -> tuple[str, list]:
    """The row's metadata, its version chosen by the contact's language among the versions
    pinned at submission: one CASE over precomputed JSON, no Python per recipient."""
    version_id = _pinned_version_id(campaign, variant)
    return metadata_case_sql(
        pinned_variants(campaign, version_id), version_id, lambda vid: _variant_metadata(campaign, variant, vid), json_sql
    )


def _messages_spec(campaign: Campaign, variant: CampaignVariant | None, *, low: int, high: int, now: datetime) -> dict:
    """What `insert_messages_from_select` needs for one chunk of one variant: the SELECT of
    the recipients' messages (the columns that vary per row) and the campaign's constants."""
    recipient, contact = CampaignRecipient._meta.db_table, Contact._meta.db_table
    address = "c.email" if campaign.channel == Channel.EMAIL else "c.phone"
    variant_clause = "r.variant_id = %s" if variant else "r.variant_id IS NULL"
    metadata_sql, metadata_params = _metadata_sql(campaign, variant)
    if connection.vendor == "postgresql":
        # One primary-key probe per recipient of the chunk. A plain join let the planner hash
        # the chunk and scan every contact instead, for each chunk: 0.1–0.4 s × 50 chunks.
        join = f"CROSS JOIN LATERAL (SELECT id, email, phone, locale FROM {contact} WHERE id = r.contact_id OFFSET 0) c"
    else:
        join = f"INNER JOIN {contact} c ON c.id = r.contact_id"
    select_sql = (
        f"SELECT r.message_id AS id, c.id AS contact_id, {address} AS to_address, {metadata_sql} AS metadata, "
        "r.scheduled_at AS scheduled_at, %s || CAST(c.id AS TEXT) AS dedup_key "
        f"FROM {recipient} r {join} "
        f"WHERE r.campaign_id = %s AND r.status = %s AND {variant_clause} AND r.id >= %s AND r.id < %s "
        "AND r.message_id IS NOT NULL"
    )
    params = [*metadata_params, dedup_prefix(campaign.pk), campaign.pk, Status.QUEUED, *([variant.pk] if variant else []), low, high]
    return {
        "select_sql": select_sql,
        "params": params,
        "channel": campaign.channel,
        "from_address": campaign.from_address,
        "topic_id": campaign.topic_id,
        "is_marketing": campaign.topic.kind == "marketing",
        "now": now,
    }


def plan_chunks(campaign: Campaign, *, status: str = Status.QUEUED) -> int:
    """Cut the id range of the campaign's recipients in `status` into chunks to create."""
    size = settings.MAILROOM_FANOUT_CHUNK
    recipients = CampaignRecipient.objects.filter(campaign=campaign, status=status)
    first, last = (recipients.order_by(order).values_list("pk", flat=True).first() for order in ("pk", "-pk"))
    if first is None:
        return 0
    chunks = [FanoutChunk(campaign=campaign, first_recipient=low, end_recipient=low + size) for low in range(first, last + 1, size)]
    FanoutChunk.objects.bulk_create(chunks)
    return len(chunks)


def _still_sending(campaign: Campaign) -> bool:
    """Read the state under a share lock held to the end of the chunk's transaction: pause and
    cancel lock the row for update, so they wait for this chunk and the next one sees them."""
    table = Campaign._meta.db_table
    lock = " FOR SHARE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT state FROM {table} WHERE id = %s{lock}", [campaign.pk])
        row = cursor.fetchone()
    return row is not None and row[0] == Campaign.State.SENDING


def _commit_without_waiting_for_disk(cursor) -> None:
    """PostgreSQL: this transaction's commit returns before its WAL reaches the disk (the WAL
    writer flushes it a moment later). A crash in that moment loses the chunk whole — its
    messages and its `done` mark together — and the next run creates them again, under the
    same reserved ids and dedup keys: nothing is lost and nothing is created twice. Nothing
    can send them before they are on disk either: claiming a message commits synchronously,
    which flushes the WAL before it, this chunk's included."""
    if connection.vendor == "postgresql":
        cursor.execute("SET LOCAL synchronous_commit = off")


def create_messages(*, campaign: Campaign) -> FanoutResult:
    """Claim undone chunks one at a time until none is left (or the campaign stops sending);
    each chunk's messages and its `done` mark commit together."""
    result = FanoutResult()
    while True:
        with transaction.atomic():
            if not _still_sending(campaign):
                result.stopped = True
                return result
            chunk = FanoutChunk.objects.select_for_update(skip_locked=True).filter(campaign=campaign, done=False).order_by("pk").first()
            if chunk is None:
                return result
            current = Campaign.objects.select_related("topic").get(pk=campaign.pk)
            now = timezone.now()
            created = 0
            with connection.cursor() as cursor:
                _commit_without_waiting_for_disk(cursor)
                for variant in list(current.variants.all()) or [None]:
                    spec = _messages_spec(current, variant, low=chunk.first_recipient, high=chunk.end_recipient, now=now)
                    created += insert_messages_from_select(cursor, **spec)
            result.messages += created
            chunk.done, chunk.messages = True, created
            chunk.save(update_fields=["done", "messages"])


def create_messages_side_by_side(*, campaign: Campaign, workers: int) -> FanoutResult:
    """`workers` claim loops in threads, each on its own connection. PostgreSQL only (SQLite
    writes one at a time anyway), and never inside a transaction, whose rows the threads'
    connections could not see."""
    if workers < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        return create_messages(campaign=campaign)

    def claim_loop() -> FanoutResult:
        try:
            return create_messages(campaign=campaign)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fan-out") as pool:
        results = [future.result() for future in [pool.submit(claim_loop) for _ in range(workers)]]
    return FanoutResult(messages=sum(r.messages for r in results), stopped=any(r.stopped for r in results))


def kick_drains(campaign: Campaign) -> None:
    """One drain task per worker, so every worker starts on the new backlog."""
    for _worker in range(max(1, settings.Q_CLUSTER.get("workers", 1))):
        after_commit("messaging.tasks.drain_outbox", coalesce=False, channel=campaign.channel)


def finish_fanout(*, campaign: Campaign) -> None:
    """After a pass of message creation: either everything is queued (done), or holdouts
    wait for the A/B winner (testing, the wait starts now)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state != Campaign.State.SENDING or campaign.fanout != Campaign.Fanout.RUNNING:
            return
        if FanoutChunk.objects.filter(campaign=campaign, done=False).exists():
            return  # another worker is still creating messages
        if campaign.winner_id is None and CampaignRecipient.objects.filter(campaign=campaign, status=Status.HOLDOUT).exists():
            campaign.fanout = Campaign.Fanout.TESTING
            campaign.ab_test_ends_at = timezone.now() + timedelta(hours=campaign.ab_wait_hours)
        else:
            campaign.fanout = Campaign.Fanout.DONE
        campaign.save(update_fields=["fanout", "ab_test_ends_at", "updated_at"])


def fan_out(*, campaign: Campaign) -> FanoutResult:
    """Run (or resume) the whole fan-out of a sending campaign. Safe to call twice at once.
    Settling the campaign afterwards (guardrails, sent) is the tick's: `tick.fan_out_and_settle`."""
    campaign.refresh_from_db()
    if campaign.state != Campaign.State.SENDING:
        return FanoutResult(stopped=True)
    if campaign.fanout == Campaign.Fanout.NOT_STARTED:
        prepare_recipients(campaign=campaign)
        campaign.refresh_from_db()
    if campaign.fanout != Campaign.Fanout.RUNNING:
        return FanoutResult(stopped=campaign.fanout != Campaign.Fanout.DONE)
    result = create_messages_side_by_side(campaign=campaign, workers=settings.MAILROOM_FANOUT_WORKERS)
    if result.messages:
        kick_drains(campaign)
    if not result.stopped:
        finish_fanout(campaign=campaign)
        result.finished = True
    logger.info("campaign %s: %s messages queued%s", campaign.pk, result.messages, " (stopped)" if result.stopped else "")
    return result
