# The console's outbox search by address (whole or its beginning), without blocking writes to a
# large outbox while the index is built (messaging.migration_operations).

from django.db import migrations, models

from messaging.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0026_outbox_body_pruned_at"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="outboxmessage",
            index=models.Index(fields=["to_address"], name="outbox_to_address", opclasses=["varchar_pattern_ops"]),
        ),
    ]
