from django.db import migrations, models

from messaging.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("messaging", "0028_provider_retried_count"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="outboxmessage",
            index=models.Index(fields=["created_at", "channel", "status"], name="outbox_created_channel_status"),
        ),
    ]
