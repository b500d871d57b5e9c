"""Message templates and their immutable versions."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models.consent import Topic
from messaging.models.contacts import Channel
from messaging.models.validation import check_approved_template


class Template(models.Model):
    """One message template in one language. The same `key` in several locales makes the
    locale variants; rendering picks the contact's language and falls back to the default."""

    class Category(models.TextChoices):
        TRANSACTIONAL = "transactional", _("Transactional")
        LIFECYCLE = "lifecycle", _("Lifecycle")
        NEWSLETTER = "newsletter", _("Newsletter")
        PROMOTION = "promotion", _("Promotion")

    key = models.SlugField(_("key"), max_length=100)
    locale = models.CharField(_("language"), max_length=10, default="en")
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, default=Category.TRANSACTIONAL)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="templates", verbose_name=_("topic"))
    active_version = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("active version")
    )
    is_active = models.BooleanField(_("active"), default=True)
    from_catalog = models.BooleanField(_("from the catalog"), default=False)
    # Archived (messaging.content.retirement): hidden from pickers and never sent again; its
    # versions, the messages sent with them and their reports stay.
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)
    # WhatsApp only: business-initiated messages must use a template WhatsApp approved.
    whatsapp_template_sid = models.CharField(
        _("approved WhatsApp template"),
        max_length=100,
        blank=True,
        help_text=_(
            "The Content SID (HX…) of the template WhatsApp approved for this message, as your provider shows it. "
            "When set, the message goes out as that template; the text here is what the console shows."
        ),
    )
    whatsapp_variables = models.JSONField(
        _("approved template variables"),
        default=list,
        blank=True,
        help_text=_(
            "In order, what fills {{1}}, {{2}}… of the approved template: a JSON list of template expressions filled "
            'per contact, e.g. ["{{ contact.first_name }}", "{{ order_number }}"].'
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["key", "locale"]
        constraints = [models.UniqueConstraint(fields=["key", "locale"], name="one_template_per_key_and_locale")]

    def __str__(self) -> str:
        return f"{self.name} ({self.locale})"

    def clean(self) -> None:
        check_approved_template(self)


class TemplateVersion(models.Model):
    """Immutable: editing a template creates a new version. Compiled once, when saved."""

    class Format(models.TextChoices):
        MJML = "mjml", "MJML"
        HTML = "html", "HTML"

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions", verbose_name=_("template"))
    number = models.PositiveIntegerField(_("version"))
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    preheader = models.CharField(_("preheader"), max_length=300, blank=True)
    body_format = models.CharField(_("format"), max_length=8, choices=Format.choices, default=Format.MJML)
    body = models.TextField(_("body"), blank=True)
    text_body = models.TextField(_("text version"), blank=True)
    sms_body = models.TextField(_("SMS / push text"), blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("author")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    compiled_html = models.TextField(_("compiled HTML"), blank=True)
    compiled_text = models.TextField(_("compiled text"), blank=True)

    class Meta:
        verbose_name = _("template version")
        verbose_name_plural = _("template versions")
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="one_number_per_template_version")]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise TypeError("Template versions are immutable: save a new version instead.")
        super().save(*args, **kwargs)
