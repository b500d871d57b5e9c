"""API keys: how another system (an integration) authenticates to the REST API.

A key acts as its own service user, a member of one role group, so the permissions an
integration has are the role's Django permissions — the same policy as for people. The
secret is shown once when the key is created; only its SHA-256 is stored (the secret is
random and long, so a slow password hash would add nothing).
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiKeyQuerySet(models.QuerySet):
    def usable(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    name = models.CharField(_("name"), max_length=100, help_text=_("Which integration uses this key, e.g. “Shop backend”."))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, help_text=_("The public part of the key, shown in lists."))
    secret_hash = models.CharField(max_length=64)
    role = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("role"))
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key", verbose_name=_("acts as"), editable=False
    )
    rate = models.CharField(
        _("rate limit"), max_length=32, blank=True, help_text=_("Requests allowed, e.g. 600/min. Empty: the default for API keys.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("revoked by")
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
