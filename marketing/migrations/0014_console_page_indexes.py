from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0013_fanout_chunk_messages"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="automationrun",
            index=models.Index(fields=["-started_at", "-id"], name="automation_run_newest_first"),
        ),
    ]
