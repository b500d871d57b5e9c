from django.db import migrations, models

from messaging.migration_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("messaging", "0025_webhook_delivery_sealed_body"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="outboxmessage",
            index=models.Index(fields=["created_at", "channel", "status"], name="outbox_created_channel_status"),
        ),
    ]
