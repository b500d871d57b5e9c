"""Contacts: the people Mailroom talks to."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.contact_fields import clean_contact_fields


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    WHATSAPP = "whatsapp", _("WhatsApp")
    PUSH = "push", _("Push")


class ContactQuerySet(models.QuerySet):
    def active(self) -> "ContactQuerySet":
        return self.filter(deleted_at__isnull=True)


class Frequency(models.TextChoices):
    ALL = "all", _("Everything, as it happens")
    WEEKLY = "weekly", _("Weekly digest only: at most one message a week")


class Contact(models.Model):
    """A person. Email, phone and external id are each unique when present.

    Rules about what a valid value is live in `messaging.contact_fields`: the console form,
    the CSV import and the API all go through `Contact.clean()`, which calls them.
    """

    # A CharField on purpose: messaging.contact_fields.normalise_email is the one email rule.
    email = models.CharField(_("email"), max_length=254, unique=True, null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=20, unique=True, null=True, blank=True, help_text=_("E.164, e.g. +33612345678"))
    external_id = models.CharField(_("external id"), max_length=128, unique=True, null=True, blank=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    locale = models.CharField(_("language"), max_length=10, default="en")
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC")
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    push_tokens = models.JSONField(_("push tokens"), default=list, blank=True)
    # Chosen by the contact in the preference center (messaging.preferences), each change
    # logged as a ConsentRecord; the send-time gate (messaging.delivery.sending.gate) honours them.
    marketing_frequency = models.CharField(
        _("marketing frequency"), max_length=10, choices=Frequency.choices, default=Frequency.ALL, db_default=Frequency.ALL
    )
    paused_until = models.DateTimeField(_("marketing paused until"), null=True, blank=True)
    email_verified_at = models.DateTimeField(_("email verified"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True)
    erased_at = models.DateTimeField(_("erased"), null=True, blank=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["locale"]), models.Index(fields=["timezone"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(email__isnull=False)
                    | models.Q(phone__isnull=False)
                    | models.Q(external_id__isnull=False)
                    | models.Q(erased_at__isnull=False)
                ),
                name="contact_has_an_identity",
            )
        ]

    def __str__(self) -> str:
        if self.erased_at:
            return _("Erased contact #%(id)s") % {"id": self.pk}
        return self.email or self.phone or self.external_id or f"#{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def clean(self) -> None:
        clean_contact_fields(self)
