"""Site settings: one row holding who sends and what the product calls itself.

Read it through `messaging.site.current()` only (environment variables override it there);
change it through `messaging.site.update_site_settings` (validated, audited)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models.delivery import Provider


class SiteSettings(models.Model):
    class DefaultProvider(models.TextChoices):
        SANDBOX = "sandbox", _("Sandbox: a channel with no provider stores its messages in the sandbox inbox")
        NONE = "none", _("None: a channel with no provider keeps its messages queued")

    SINGLETON = 1

    sender_name = models.CharField(_("sender name"), max_length=100, blank=True)
    from_email = models.CharField(_("from address"), max_length=254, blank=True)
    reply_to = models.CharField(_("reply-to address"), max_length=254, blank=True)
    postal_address = models.TextField(_("postal address"), max_length=500, blank=True)
    site_name = models.CharField(_("site name"), max_length=100, blank=True)
    base_url = models.CharField(_("Mailroom's public address"), max_length=200, blank=True)
    site_url = models.CharField(_("site URL"), max_length=200, blank=True)
    default_provider = models.CharField(_("default provider"), max_length=16, choices=DefaultProvider.choices, blank=True)
    # The email provider this page set up (SMTP or an ESP); the sandbox when empty or inactive.
    email_provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")

    def __str__(self) -> str:
        return str(_("Site settings"))
