"""Gift-card codes (they never expire) stored in clear in the outbox before messages were
sealed stay readable, and redeemable, by every console role unless hidden here."""

from django.db import migrations
from django.db.models import Q


def hide(apps, schema_editor) -> None:
    from messaging.secrets import hide_legacy_secrets

    hide_legacy_secrets(apps, Q(dedup_key__startswith="gift-card-delivered:"))


class Migration(migrations.Migration):
    dependencies = [
        ("growth", "0002_sec_limits"),
        ("messaging", "0012_sec_review1"),
    ]

    operations = [migrations.RunPython(hide, migrations.RunPython.noop)]
