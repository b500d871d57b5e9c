# Retention (messaging.delivery.retention): when a message's content was pruned, and the partial
# index the nightly job reads its batches from, built without blocking writes to a large outbox
# (messaging.migration_operations), so this migration does not run in one transaction.

from django.db import migrations, models

from messaging.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0025_webhook_delivery_sealed_body"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="body_pruned_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="content deleted"),
        ),
        AddIndexWithoutLocking(
            model_name="outboxmessage",
            index=models.Index(
                condition=models.Q(("body_pruned_at__isnull", True), ("status__in", ["sent", "failed", "cancelled", "suppressed"])),
                fields=["created_at", "id"],
                name="outbox_retention",
            ),
        ),
    ]
