"""The audit trail: every change a person (or the system) makes, with before/after."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.audit_verbs import verb_label


class AuditEntry(models.Model):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries", verbose_name=_("by")
    )
    verb = models.CharField(_("action"), max_length=64, db_index=True)
    target_type = models.CharField(_("object type"), max_length=100, db_index=True)
    target_id = models.CharField(_("object id"), max_length=64, blank=True, db_index=True)
    target_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        who = self.actor or _("system")
        return f"{who} {self.verb_label} {self.target_repr}"

    @property
    def verb_label(self) -> str:
        """The verb as the console says it, in the active language (messaging.audit_verbs)."""
        return verb_label(self.verb)
