"""Recipients the old fan-out left "pending" (a campaign in the middle of its fan-out during
the upgrade) get what the new fan-out gives them: a reserved outbox id, the "queued" status
and a chunk to create their messages, so the next minute tick sends them instead of
finishing the campaign without them."""

from django.db import migrations

CHUNK = 20000


def reserve_ids(cursor, vendor: str, recipient_ids: list[int]) -> None:
    recipients, outbox = "marketing_campaignrecipient", "messaging_outboxmessage"
    if vendor == "postgresql":
        cursor.execute(
            f"UPDATE {recipients} SET status = 'queued', message_id = nextval(pg_get_serial_sequence(%s, 'id')) WHERE id = ANY(%s)",
            [outbox, recipient_ids],
        )
        return
    # SQLite: the numbers above the outbox's AUTOINCREMENT mark, then the mark moves past them.
    cursor.execute(f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), COALESCE(MAX(id), 0)) FROM {outbox}", [outbox])
    base = cursor.fetchone()[0]
    cursor.executemany(
        f"UPDATE {recipients} SET status = 'queued', message_id = %s WHERE id = %s",
        [(base + offset, pk) for offset, pk in enumerate(recipient_ids, start=1)],
    )
    last = base + len(recipient_ids)
    cursor.execute("UPDATE sqlite_sequence SET seq = MAX(seq, %s) WHERE name = %s", [last, outbox])
    if not cursor.rowcount:
        cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [outbox, last])


def queue_pending_recipients(apps, schema_editor):
    CampaignRecipient = apps.get_model("marketing", "CampaignRecipient")
    FanoutChunk = apps.get_model("marketing", "FanoutChunk")
    connection = schema_editor.connection
    campaigns = CampaignRecipient.objects.filter(status="pending").values_list("campaign_id", flat=True).distinct()
    for campaign_id in list(campaigns):
        ids = list(CampaignRecipient.objects.filter(campaign_id=campaign_id, status="pending").order_by("pk").values_list("pk", flat=True))
        with connection.cursor() as cursor:
            reserve_ids(cursor, connection.vendor, ids)
        FanoutChunk.objects.bulk_create(
            FanoutChunk(campaign_id=campaign_id, first_recipient=low, end_recipient=low + CHUNK) for low in range(ids[0], ids[-1] + 1, CHUNK)
        )


class Migration(migrations.Migration):
    dependencies = [("marketing", "0005_fanout_reserved_message_ids")]

    operations = [migrations.RunPython(queue_pending_recipients, migrations.RunPython.noop)]
