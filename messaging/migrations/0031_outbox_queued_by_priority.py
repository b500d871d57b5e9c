"""The claim's index: queued messages by priority, then due time (partial: only queued rows),
in place of (status, next_attempt_at, priority), which made every claim read the whole due
backlog. Built first without blocking writes, then the old one is dropped."""

from django.db import migrations, models

from messaging.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0030_outbox_created_at_one_index"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="outboxmessage",
            index=models.Index(condition=models.Q(status="queued"), fields=["priority", "next_attempt_at"], name="outbox_queued"),
        ),
        migrations.RemoveIndex(model_name="outboxmessage", name="outbox_due"),
    ]
