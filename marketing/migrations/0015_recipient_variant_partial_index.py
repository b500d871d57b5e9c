"""A recipient row written by the fan-out fires no foreign-key check on its variant, and
writes the variant index only when it has one (an A/B test): built first without blocking
writes, then the full index and the constraint are dropped."""

import django.db.models.deletion
from django.db import migrations, models

from messaging.migration_operations import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("marketing", "0014_console_page_indexes"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="campaignrecipient",
            index=models.Index(condition=models.Q(variant__isnull=False), fields=["variant"], name="recipient_variant"),
        ),
        migrations.AlterField(
            model_name="campaignrecipient",
            name="variant",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="recipients",
                to="marketing.campaignvariant",
            ),
        ),
    ]
