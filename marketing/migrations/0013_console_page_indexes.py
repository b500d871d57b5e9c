from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("marketing", "0012_automation_form_trigger_topic_steps"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="automationrun",
            index=models.Index(fields=["-started_at", "-id"], name="automation_run_newest_first"),
        ),
    ]
