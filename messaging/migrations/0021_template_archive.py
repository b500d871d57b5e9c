from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0020_inbox_handler_path")]

    operations = [
        migrations.AddField(
            model_name="template",
            name="archived_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="archived"),
        ),
    ]
