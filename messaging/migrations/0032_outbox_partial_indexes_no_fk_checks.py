"""A new (queued) outbox row writes fewer indexes and fires no foreign-key check: the indexes
on the provider's message id, the provider and the leases become partial (only the rows those
lookups can find), and the links to the topic and the provider lose their database
constraint (the ORM nulls them on delete). The partial indexes are built first, without
blocking writes, then the old ones are dropped."""

import django.db.models.deletion
from django.db import migrations, models

from messaging.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("messaging", "0031_outbox_queued_by_priority"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="outboxmessage",
            index=models.Index(condition=~models.Q(provider_message_id=""), fields=["provider_message_id"], name="outbox_provider_msg_id"),
        ),
        AddIndexWithoutLocking(
            model_name="outboxmessage",
            index=models.Index(condition=models.Q(provider__isnull=False), fields=["provider"], name="outbox_provider"),
        ),
        AddIndexWithoutLocking(
            model_name="outboxmessage",
            index=models.Index(condition=models.Q(status="sending"), fields=["lease_until"], name="outbox_sending_leases"),
        ),
        migrations.RemoveIndex(model_name="outboxmessage", name="outbox_leases"),
        migrations.RemoveIndex(model_name="outboxmessage", name="outbox_provider_message_id"),
        migrations.AlterField(
            model_name="outboxmessage",
            name="provider",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="messages",
                to="messaging.provider",
                verbose_name="provider",
            ),
        ),
        migrations.AlterField(
            model_name="outboxmessage",
            name="topic",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="messages",
                to="messaging.topic",
            ),
        ),
    ]
