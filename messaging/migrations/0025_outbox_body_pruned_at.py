# Retention (messaging.delivery.retention): when a message's content was pruned, and the partial
# index the nightly job reads its batches from. On PostgreSQL the index is built CONCURRENTLY
# (a plain CREATE INDEX would block every write to a large outbox, the send path's included,
# for as long as the build takes), so this migration does not run in one transaction.

from django.db import migrations, models

RETENTION_INDEX = models.Index(
    condition=models.Q(("body_pruned_at__isnull", True), ("status__in", ["sent", "failed", "cancelled", "suppressed"])),
    fields=["created_at", "id"],
    name="outbox_retention",
)


def _concurrently(schema_editor) -> dict:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


def add_index(apps, schema_editor):
    schema_editor.add_index(apps.get_model("messaging", "OutboxMessage"), RETENTION_INDEX, **_concurrently(schema_editor))


def remove_index(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("messaging", "OutboxMessage"), RETENTION_INDEX, **_concurrently(schema_editor))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0024_signup_forms"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="body_pruned_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="content deleted"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="outboxmessage", index=RETENTION_INDEX)],
            database_operations=[migrations.RunPython(add_index, remove_index)],
        ),
    ]
