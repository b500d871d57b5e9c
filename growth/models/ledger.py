"""What every ledger row shares: written once, never updated, never deleted."""

from django.db import models
from django.utils.translation import gettext as _


class AppendOnlyError(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(_("Ledger rows cannot be changed; write a new row instead."))

    def delete(self):
        raise AppendOnlyError(_("Ledger rows cannot be deleted; write a new row instead."))


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(_("Ledger rows cannot be changed; write a new row instead."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(_("Ledger rows cannot be deleted; write a new row instead."))
