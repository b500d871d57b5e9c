"""What a consent record says happened (`ConsentRecord.Action`). A leaf, so the audit
trail's verb labels (messaging.audit_verbs) can name a preference change without
importing the models."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsentAction(models.TextChoices):
    GRANTED = "granted", _("Granted")
    WITHDRAWN = "withdrawn", _("Withdrawn")
    # Contact-wide preferences (no topic): the details say what changed.
    PAUSED = "paused", _("Paused")
    RESUMED = "resumed", _("Resumed")
    FREQUENCY = "frequency", _("Frequency changed")
    LANGUAGE = "language", _("Language changed")
