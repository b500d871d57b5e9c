"""Secrets an older Mailroom stored in clear, readable by every console role unless hidden here:
reset and verification links in the outbox and the sandbox (now sealed, messaging.secrets),
and provider credentials given inline (an ESP api_key, a DKIM private key…) in audit entries
written before they hid secret values (messaging.audit.redact)."""

from django.db import migrations, models
from django.db.models import Q
from django.db.models.functions import Cast


def hide(apps, schema_editor) -> None:
    from messaging.secrets import hide_legacy_secrets

    hide_legacy_secrets(apps, Q(metadata__purpose__in=["password_reset", "email_verification"]))


def hide_audit(apps, schema_editor) -> None:
    from messaging.audit import SECRET_NAME, redact

    entry_model = apps.get_model("messaging", "AuditEntry")
    candidates = entry_model.objects.annotate(_text=Cast("changes", models.TextField())).filter(_text__iregex=SECRET_NAME.pattern)
    changed = []
    for entry in candidates.only("pk", "changes").iterator(chunk_size=500):
        hidden = redact(entry.changes or {})
        if hidden != entry.changes:
            entry.changes = hidden
            changed.append(entry)
    entry_model.objects.bulk_update(changed, ["changes"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0011_sec_input"),
    ]

    operations = [
        migrations.RunPython(hide, migrations.RunPython.noop),
        migrations.RunPython(hide_audit, migrations.RunPython.noop),
    ]
