"""Set-based outbox writes for a caller that sends one message to many contacts (a campaign's
fan-out): outbox ids reserved ahead of the insert, then the messages inserted from a SELECT
the caller writes. The outbox owns its table, its column list, its defaults and its id
sequence; the caller only says which rows, and the few columns that vary per row.

Two steps, usually in different transactions:

1. Reserve. In the statement that writes the caller's own rows (e.g. one per recipient),
   `reserved_id_sql` is the expression that gives each row the id of its future message,
   then `keep_reserved_ids`, in the same transaction, makes sure no other message takes
   them. The caller stores the ids; nothing is written to the outbox yet.
2. Insert. `insert_messages_from_select` runs INSERT … SELECT from the caller's SELECT,
   under the reserved ids, skipping a row whose id or dedup key is already there (ON CONFLICT
   DO NOTHING): running it twice over the same rows writes nothing the second time.
"""

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db import connection

from messaging.models import OutboxMessage

# What the caller's SELECT yields, in this order and under these names:
#   id            the reserved outbox id (step 1)
#   contact_id    the contact
#   to_address    the address on the message's channel
#   metadata      the message's metadata (JSON text; on PostgreSQL already cast to jsonb)
#   scheduled_at  when to send it, or NULL for now
#   dedup_key     its dedup key (unique over the outbox)
PER_ROW_COLUMNS = ("id", "contact_id", "to_address", "metadata", "scheduled_at", "dedup_key")


def json_sql(placeholder: str = "%s") -> str:
    """A placeholder holding JSON text, as the database's JSON type (jsonb on PostgreSQL)."""
    return f"CAST({placeholder} AS jsonb)" if connection.vendor == "postgresql" else placeholder


def reserved_id_sql(cursor, *, order_by: str) -> tuple[str, list]:
    """(SQL expression, params): an outbox id for each row of the caller's SELECT, one no other
    message can take once `keep_reserved_ids` ran in the same transaction.

    PostgreSQL: `nextval` of the outbox's identity sequence, one per row that evaluates it.
    SQLite: the numbers after the table's AUTOINCREMENT high-water mark, numbered by
    `ROW_NUMBER() OVER (ORDER BY <order_by>)`; they are the caller's because the write
    transaction holds the database until `keep_reserved_ids` moves the mark. Wrap the
    expression in a CASE to give ids only to some rows (the others get NULL)."""
    outbox = OutboxMessage._meta.db_table
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [outbox])
        return "nextval(%s)", [cursor.fetchone()[0]]
    cursor.execute(
        f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), COALESCE(MAX(id), 0)) FROM {outbox}", [outbox]
    )
    return f"%s + ROW_NUMBER() OVER (ORDER BY {order_by})", [cursor.fetchone()[0]]


def keep_reserved_ids(cursor, *, highest: Callable[[], int | None]) -> None:
    """After the statement that used `reserved_id_sql`, in the same transaction: move SQLite's
    AUTOINCREMENT mark past `highest()` (the largest id the caller stored, or None when it
    stored none), so no message inserted later takes a reserved id. On PostgreSQL the
    sequence already moved: nothing to do, and `highest` is not called."""
    if connection.vendor != "sqlite":
        return
    last = highest()
    if last is None:
        return
    outbox = OutboxMessage._meta.db_table
    cursor.execute("UPDATE sqlite_sequence SET seq = MAX(seq, %s) WHERE name = %s", [last, outbox])
    if not cursor.rowcount:
        cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [outbox, last])


def insert_messages_sql(
    *,
    select_sql: str,
    params: list,
    channel: str,
    from_address: str,
    topic_id: int | None,
    is_marketing: bool,
    now: datetime,
    priority: int = OutboxMessage.Priority.BULK,
) -> tuple[str, list]:
    """(SQL, params) of `insert_messages_from_select`, for a caller that runs it itself."""
    if priority not in OutboxMessage.Priority.values:  # the claim looks each priority up by name
        raise ValueError(f"unknown priority {priority!r}")
    outbox = OutboxMessage._meta.db_table
    adapted_now = connection.ops.adapt_datetimefield_value(now)
    sql = (
        f"INSERT INTO {outbox} (id, channel, contact_id, to_address, from_address, topic_id, is_marketing, subject, "
        "headers, metadata, priority, status, attempts, max_attempts, scheduled_at, next_attempt_at, lease_owner, "
        "dedup_key, message_id, provider_message_id, error, created_at) "
        f"SELECT m.id, %s, m.contact_id, m.to_address, %s, %s, %s, '', {json_sql()}, m.metadata, %s, %s, 0, %s, "
        "m.scheduled_at, COALESCE(m.scheduled_at, %s), '', m.dedup_key, '', '', '', %s "
        f"FROM ({select_sql}) m WHERE true ON CONFLICT DO NOTHING"
    )
    head = [channel, from_address, topic_id, is_marketing, "{}"]
    tail = [priority, OutboxMessage.Status.QUEUED, settings.MAILROOM_MAX_ATTEMPTS, adapted_now, adapted_now]
    # The caller's SELECT comes after the constants of the outer SELECT list in the statement.
    return sql, [*head, *tail, *params]


def insert_messages_from_select(cursor, **spec) -> int:
    """Insert queued messages, one per row of the caller's SELECT, and return how many were
    inserted (rows whose id or dedup key already exists are skipped).

    `select_sql` / `params`: a SELECT yielding `PER_ROW_COLUMNS`, in that order and under those
    names. `channel`, `from_address`, `topic_id`, `is_marketing` and `priority` are the same for
    every row; the outbox fills the rest: status queued, no attempt yet, the configured
    maximum of attempts, empty subject and no body row (the worker renders them from the metadata,
    see `outbox.render_deferred`), no headers, next attempt at `scheduled_at` or `now`, and
    `created_at` = `now`."""
    cursor.execute(*insert_messages_sql(**spec))
    return max(cursor.rowcount, 0)
