"""Reset and verification links stored in clear before messages were sealed
(messaging.secrets) stay readable by every console role unless hidden here."""

from django.db import migrations
from django.db.models import Q


def hide(apps, schema_editor) -> None:
    from messaging.secrets import hide_legacy_secrets

    hide_legacy_secrets(apps, Q(metadata__purpose__in=["password_reset", "email_verification"]))


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0011_sec_input"),
    ]

    operations = [migrations.RunPython(hide, migrations.RunPython.noop)]
