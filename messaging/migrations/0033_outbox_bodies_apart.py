"""The outbox's text and HTML bodies move to a table of their own (OutboxBody), keyed by
the message: every send writes its status row twice, and that row no longer carries them."""

import django.db.models.deletion
from django.db import migrations, models

OUTBOX, BODY = "messaging_outboxmessage", "messaging_outboxbody"


def copy_bodies(apps, schema_editor) -> None:
    # Set-based, both databases: only messages with a body get a row (none means empty).
    schema_editor.execute(
        f"INSERT INTO {BODY} (message_id, text, html) SELECT id, body_text, body_html FROM {OUTBOX} "
        "WHERE body_text <> '' OR body_html <> ''"
    )


def copy_bodies_back(apps, schema_editor) -> None:
    for column, source in (("body_text", "text"), ("body_html", "html")):
        schema_editor.execute(
            f"UPDATE {OUTBOX} SET {column} = COALESCE((SELECT b.{source} FROM {BODY} b WHERE b.message_id = {OUTBOX}.id), '')"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0032_outbox_partial_indexes_no_fk_checks"),
    ]

    operations = [
        migrations.CreateModel(
            name="OutboxBody",
            fields=[
                (
                    "message",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="body",
                        serialize=False,
                        to="messaging.outboxmessage",
                        verbose_name="message",
                    ),
                ),
                ("text", models.TextField(blank=True, verbose_name="text")),
                ("html", models.TextField(blank=True, verbose_name="HTML")),
            ],
            options={
                "verbose_name": "message body",
                "verbose_name_plural": "message bodies",
            },
        ),
        migrations.RunPython(copy_bodies, copy_bodies_back, elidable=False),
        migrations.RemoveField(model_name="outboxmessage", name="body_html"),
        migrations.RemoveField(model_name="outboxmessage", name="body_text"),
    ]
