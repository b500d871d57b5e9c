"""Topics, subscriptions, the append-only consent log and suppressions."""

import hashlib

from django.conf import settings
from django.db import models
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from messaging.consent_actions import ConsentAction
from messaging.models.contacts import Channel, Contact


class Topic(models.Model):
    """What a message is about; consent is given per topic and channel."""

    class Kind(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        TRANSACTIONAL = "transactional", _("Transactional")

    key = models.SlugField(_("key"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.MARKETING)
    time_sensitive = models.BooleanField(
        _("time-sensitive"),
        default=False,
        help_text=_(
            "Reminders and the like: still sent only with consent, but never held by a pause or the weekly digest "
            "and not counted in frequency caps."
        ),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    # {"fr": {"name": "Actualités", "description": "…"}}: what contacts of another language
    # read on the preference center and unsubscribe pages; `name` is the default language's.
    translations = models.JSONField(_("translations"), default=dict, blank=True)

    class Meta:
        verbose_name = _("topic")
        verbose_name_plural = _("topics")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def _translated(self, field: str, language: str | None) -> str:
        default = getattr(self, field)
        if not language or not isinstance(self.translations, dict):
            return default
        for code in (language.lower(), language.lower().split("-")[0]):
            entry = self.translations.get(code)
            if isinstance(entry, dict) and isinstance(entry.get(field), str) and entry[field].strip():
                return entry[field]
        return default

    def name_in(self, language: str | None) -> str:
        """The topic's name in `language` ("fr", "fr-ca"), else the default name."""
        return self._translated("name", language)

    def description_in(self, language: str | None) -> str:
        return self._translated("description", language)

    @property
    def localized_name(self) -> str:
        """The name in the active language (public pages activate the contact's)."""
        return self.name_in(get_language())

    @property
    def localized_description(self) -> str:
        return self.description_in(get_language())


class Subscription(models.Model):
    """The current consent state of one contact for one topic on one channel."""

    class Status(models.TextChoices):
        SUBSCRIBED = "subscribed", _("Subscribed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="subscriptions", verbose_name=_("contact"))
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="subscriptions", verbose_name=_("topic"))
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, default=Channel.EMAIL)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.SUBSCRIBED)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        constraints = [models.UniqueConstraint(fields=["contact", "topic", "channel"], name="one_subscription_per_topic_channel")]
        indexes = [models.Index(fields=["topic", "channel", "status"])]

    def __str__(self) -> str:
        return f"{self.contact} · {self.topic} · {self.get_channel_display()}"


class LegalBasis(models.TextChoices):
    """Why Mailroom may write to a contact about a topic (GDPR art. 6): kept on each consent
    record an import makes, chosen by the person who imports the file."""

    CONSENT = "consent", _("Consent: they agreed to receive it")
    CONTRACT = "contract", _("Contract: needed for a service they use")
    LEGITIMATE_INTEREST = "legitimate_interest", _("Legitimate interest: existing customers (soft opt-in)")


class ConsentRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Consent records are append-only.")

    def delete(self):
        raise TypeError("Consent records are append-only.")


class ConsentRecord(models.Model):
    """Append-only proof of consent: who, what, when and how. Never updated or deleted
    (GDPR erasure blanks the network details of the erased contact's rows instead)."""

    Action = ConsentAction  # messaging.consent_actions

    class Source(models.TextChoices):
        CONSOLE = "console", _("Console")
        IMPORT = "import", pgettext_lazy("consent source", "Import")
        API = "api", _("API")
        PREFERENCE_CENTER = "preference_center", _("Preference center")
        UNSUBSCRIBE_LINK = "unsubscribe_link", _("Unsubscribe link")
        REPLY = "reply", _("Reply (STOP)")
        SIGNUP = "signup", _("Sign-up form")
        SYSTEM = "system", _("System")

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="consent_records", verbose_name=_("contact"))
    topic = models.ForeignKey(
        Topic, null=True, blank=True, on_delete=models.PROTECT, related_name="consent_records", verbose_name=_("topic")
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, blank=True)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    details = models.JSONField(_("details"), default=dict, db_default={}, blank=True)
    source = models.CharField(_("source"), max_length=32, choices=Source.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    wording_version = models.CharField(_("wording version"), max_length=64, blank=True)
    legal_basis = models.CharField(_("legal basis"), max_length=24, choices=LegalBasis.choices, blank=True, default="", db_default="")
    created_at = models.DateTimeField(_("when"), auto_now_add=True, db_index=True)

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        if self.topic_id is None:
            return f"{self.get_action_display()} · {self.contact}"
        return f"{self.get_action_display()} · {self.topic} · {self.get_channel_display()}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not getattr(self, "_erasing", False):
            raise TypeError("Consent records are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Consent records are append-only.")


def hashed_address(address: str) -> str:
    """What a suppression keeps of an erased contact's address (GDPR erasure): enough to
    recognise the address when it comes back, not enough to read it."""
    return "sha256:" + hashlib.sha256(address.strip().lower().encode()).hexdigest()


class Suppression(models.Model):
    """An address we must never send to on a channel, whatever the topic. After a GDPR
    erasure `address` holds `hashed_address(address)`: lookups go through `keys_for`."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        COMPLAINT = "complaint", _("Complaint")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed from everything")
        MANUAL = "manual", _("Manual")

    address = models.CharField(_("address"), max_length=254)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["address", "channel"], name="one_suppression_per_address")]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_channel_display()})"

    @staticmethod
    def keys_for(addresses) -> dict[str, str]:
        """{stored form: address} for the plain and the hashed form of each address."""
        keys = {address: address for address in addresses}
        keys.update({hashed_address(address): address for address in addresses})
        return keys
