"""Sign-up forms (hosted at /f/<slug>/, or embedded as a plain HTML form) and the sign-ups
waiting for their confirmation link to be opened (double opt-in)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models.consent import Topic


def validate_redirect(url: str) -> None:
    """A thank-you or confirmed redirect goes to an http(s) address only."""
    if url and urlsplit(url).scheme.lower() not in {"http", "https"}:
        raise ValidationError(_("Only an http:// or https:// address can be a redirect."), code="redirect_scheme")


class SignupForm(models.Model):
    """What a marketer offers: topics, the fields asked, the wording and what happens next."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(
        _("address"), max_length=64, unique=True, help_text=_("The hosted page is /f/ followed by this address, e.g. /f/news/.")
    )
    topics = models.ManyToManyField(Topic, related_name="signup_forms", verbose_name=_("topics offered"))
    ask_name = models.BooleanField(_("ask for a name"), default=False)
    ask_language = models.BooleanField(_("ask for a language"), default=False)
    ask_phone = models.BooleanField(_("ask for a phone number"), default=False)
    double_opt_in = models.BooleanField(
        _("double opt-in"), default=True, help_text=_("Subscribe only once the visitor opens the link in a confirmation email.")
    )
    confirmation_template = models.SlugField(
        _("confirmation template"),
        max_length=100,
        default="signup-confirmation",
        help_text=_("The key of the email template holding the confirmation link ({{ confirm_url }})."),
    )
    wording = models.TextField(
        _("consent wording"),
        default=_("Yes, send me emails about the topics I picked. I can unsubscribe at any time."),
        help_text=_("Shown next to the button and kept on every consent record."),
    )
    thank_you_text = models.TextField(_("thank-you text"), blank=True)
    thank_you_url = models.URLField(
        _("thank-you redirect"), blank=True, validators=[validate_redirect], help_text=_("An http(s) address; replaces the text.")
    )
    confirmed_text = models.TextField(_("confirmed text"), blank=True)
    confirmed_url = models.URLField(
        _("confirmed redirect"), blank=True, validators=[validate_redirect], help_text=_("An http(s) address; replaces the text.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    views = models.PositiveIntegerField(_("views"), default=0, editable=False)
    submissions = models.PositiveIntegerField(_("submissions"), default=0, editable=False)
    confirmations = models.PositiveIntegerField(_("confirmations"), default=0, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("sign-up form")
        verbose_name_plural = _("sign-up forms")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PendingSignup(models.Model):
    """A sign-up waiting for its confirmation link: consumed (deleted) once confirmed,
    deleted by the daily clean-up once expired."""

    form = models.ForeignKey(SignupForm, on_delete=models.CASCADE, related_name="pending", verbose_name=_("form"))
    email = models.CharField(_("email"), max_length=254, db_index=True)
    first_name = models.CharField(_("name"), max_length=150, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    topic_ids = models.JSONField(_("topics"), default=list)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    wording = models.TextField(_("wording shown"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), db_index=True)

    class Meta:
        verbose_name = _("pending sign-up")
        verbose_name_plural = _("pending sign-ups")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.form} · #{self.pk}"
