"""Sign-up actions: what the hosted page and the embedded form post, the confirmation link,
the daily clean-up and the console's snippet.

Nothing here tells a visitor whether an address is known: a new, pending or subscribed
address gets the same page. An address already subscribed to every topic it asked for is
sent nothing; a pending one gets no second email within MAILROOM_SIGNUP_RESEND_MINUTES.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from messaging import site
from messaging.consent import ConsentContext, subscribe
from messaging.contact_fields import normalise_email, normalise_phone
from messaging.contacts import create_contact
from messaging.content.versions import pick_template
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.throttle import allow
from messaging.errors import InvalidInput, MailroomError
from messaging.models import Channel, ConsentRecord, Contact, LegalBasis, OutboxMessage, PendingSignup, SignupForm, Subscription
from messaging.secrets import marker
from messaging.signup.signals import signup_confirmed
from messaging.tokens import TokenExpired, TokenService, TokenUsed, conceal_id
from messaging.webhooks.emit import emit

CONFIRM = TokenService("mailroom.signup-confirm", max_age=lambda: settings.MAILROOM_SIGNUP_EXPIRY_DAYS * 86400)
HONEYPOT = "website"  # the field people leave empty and form-filling robots do not


class SignupThrottled(MailroomError):
    code = "throttled"


@dataclass(frozen=True)
class SignupRequest:
    """What the visitor posted and where from."""

    email: str = ""
    first_name: str = ""
    language: str = ""
    phone: str = ""
    topics: list[str] = field(default_factory=list)
    ip_address: str | None = None
    user_agent: str = ""
    page_language: str = ""


def _address_key(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:24]  # cache keys never hold the address


def _wording_version(wording: str) -> str:
    return "sha256:" + hashlib.sha256(wording.encode()).hexdigest()[:32]


def _cleaned(*, form: SignupForm, data: SignupRequest) -> dict:
    errors: dict[str, list[str]] = {}
    try:
        email = normalise_email(data.email)
    except ValidationError:
        email = None
    if not email:
        errors["email"] = [_("Enter a valid email address.")]
    offered = {topic.key: topic for topic in form.topics.all()}
    unknown = [key for key in data.topics if key not in offered]
    if unknown:
        errors["topics"] = [_("Pick topics from the list.")]
    picked = [offered[key] for key in dict.fromkeys(data.topics) if key in offered]
    if not unknown and not picked:
        if len(offered) == 1:
            picked = list(offered.values())
        else:
            errors["topics"] = [_("Pick at least one topic.")]
    language = ""
    if form.ask_language and data.language:
        if data.language not in dict(settings.LANGUAGES):
            errors["language"] = [_("Pick a language from the list.")]
        language = data.language
    phone = ""
    if form.ask_phone and data.phone.strip():
        try:
            phone = normalise_phone(data.phone) or ""
        except ValidationError:
            errors["phone"] = [_("Enter a valid phone number.")]
    if errors:
        raise InvalidInput(" ".join(message for messages in errors.values() for message in messages), fields=errors)
    return {
        "email": email,
        "first_name": data.first_name.strip()[:150] if form.ask_name else "",
        "language": language or (data.page_language if data.page_language in dict(settings.LANGUAGES) else ""),
        "phone": phone,
        "topics": picked,
    }


def count_view(*, form: SignupForm) -> None:
    SignupForm.objects.filter(pk=form.pk).update(views=F("views") + 1)


def _already_subscribed(email: str, topics) -> bool:
    return Subscription.objects.filter(
        contact__email=email, topic__in=topics, channel=Channel.EMAIL, status=Subscription.Status.SUBSCRIBED
    ).count() == len(topics)


@transaction.atomic
def submit_signup(*, form: SignupForm, data: SignupRequest) -> None:
    """Take one post of the form. Raises InvalidInput (nothing written) or SignupThrottled;
    otherwise the visitor sees the same page whatever happened to the address."""
    cleaned = _cleaned(form=form, data=data)
    email = cleaned["email"]
    if not allow(scope="signup-address", key=_address_key(email)):
        raise SignupThrottled(_("Too many requests. Please wait a while before trying again."))
    SignupForm.objects.filter(pk=form.pk).update(submissions=F("submissions") + 1)
    now = timezone.now()
    pending = PendingSignup(
        form=form,
        email=email,
        first_name=cleaned["first_name"],
        language=cleaned["language"],
        phone=cleaned["phone"],
        topic_ids=[topic.pk for topic in cleaned["topics"]],
        ip_address=data.ip_address,
        user_agent=data.user_agent[:300],
        wording=form.wording,
        expires_at=now + timedelta(days=settings.MAILROOM_SIGNUP_EXPIRY_DAYS),
    )
    if not form.double_opt_in:
        pending.created_at = now
        _subscribe(pending=pending, confirmed_ip=data.ip_address)
        return
    if _already_subscribed(email, cleaned["topics"]):
        return  # nothing to confirm; the page says the same as for anyone else
    window = now - timedelta(minutes=settings.MAILROOM_SIGNUP_RESEND_MINUTES)
    if PendingSignup.objects.filter(email=email, created_at__gte=window).exists():
        return  # one confirmation email per address and window
    pending.save()
    _send_confirmation(pending=pending)


def _send_confirmation(*, pending: PendingSignup) -> OutboxMessage:
    url = site.current().link(reverse("messaging:signup-confirm", args=[CONFIRM.make({"p": conceal_id(pending.pk)})]))
    language = pending.language or settings.LANGUAGE_CODE
    template = pick_template(key=pending.form.confirmation_template, locale=language)
    common = {
        "channel": Channel.EMAIL,
        "to": pending.email,
        "context": {"contact": {"first_name": pending.first_name, "last_name": "", "email": pending.email}, "form_name": pending.form.name},
        "secrets": {"confirm_url": url},  # sealed: no staff member can read the link (messaging.secrets)
        "priority": OutboxMessage.Priority.TRANSACTIONAL,
        "track_links": False,
        "metadata": {"purpose": "signup_confirmation", "signup_form": pending.form_id},
    }
    if template is not None:
        # The version itself: with no contact yet, enqueue_message would pick the default language.
        return enqueue_message(template_version=template.active_version, **common)
    with translation.override(language):
        return enqueue_message(
            subject=_("Please confirm your subscription"),
            text=_("Please confirm your subscription by opening this link:\n%(url)s\n\nIf you did not ask for this, ignore this message.")
            % {"url": marker("confirm_url")},
            **common,
        )


def _contact_for(pending: PendingSignup) -> Contact | None:
    contact = Contact.objects.select_for_update().filter(email=pending.email).first()
    if contact is not None:
        return None if contact.erased_at or contact.deleted_at else contact
    fields = {"email": pending.email, "first_name": pending.first_name, "locale": pending.language or settings.LANGUAGE_CODE}
    if pending.phone and not Contact.objects.filter(phone=pending.phone).exists():
        fields["phone"] = pending.phone
    return create_contact(actor=None, **fields)


def _subscribe(*, pending: PendingSignup, confirmed_ip: str | None) -> Contact | None:
    form = pending.form
    contact = _contact_for(pending)
    if contact is None:
        return None
    context = ConsentContext(
        source=ConsentRecord.Source.SIGNUP,
        ip_address=pending.ip_address,
        user_agent=pending.user_agent,
        wording_version=_wording_version(pending.wording),
        legal_basis=LegalBasis.CONSENT,
        details={
            "form": form.pk,
            "form_name": form.name,
            "wording": pending.wording,
            "submitted_at": pending.created_at.isoformat(),
            "confirmed_ip": confirmed_ip,
            "double_opt_in": form.double_opt_in,
        },
    )
    for topic in form.topics.filter(pk__in=pending.topic_ids):
        subscribe(actor=None, contact=contact, topic=topic, channel=Channel.EMAIL, context=context)
    SignupForm.objects.filter(pk=form.pk).update(confirmations=F("confirmations") + 1)
    emit("form.confirmed", {"contact_id": contact.pk, "form_id": form.pk, "form": form.slug})
    transaction.on_commit(lambda: signup_confirmed.send(sender=SignupForm, contact=contact, form=form))
    return contact


def pending_for(*, token: str) -> PendingSignup:
    """The sign-up a link confirms; raises TokenInvalid/TokenExpired/TokenUsed."""
    pending_pk, _read = CONFIRM.read_id(token, "p")
    pending = PendingSignup.objects.select_related("form").filter(pk=pending_pk).first()
    if pending is None:
        raise TokenUsed  # confirmed already (the row is consumed) or cleaned up after expiry
    if pending.expires_at <= timezone.now():
        raise TokenExpired
    return pending


@transaction.atomic
def confirm_signup(*, token: str, ip_address: str | None = None) -> PendingSignup:
    """Subscribe the topics of a pending sign-up and consume it: the link works once."""
    pending = pending_for(token=token)
    pending = PendingSignup.objects.select_for_update().select_related("form").filter(pk=pending.pk).first()
    if pending is None:
        raise TokenUsed  # two clicks at once: one wins
    _subscribe(pending=pending, confirmed_ip=ip_address)
    pending.delete()
    return pending


def delete_expired_signups() -> int:
    """The daily clean-up: unconfirmed sign-ups past their expiry are deleted."""
    deleted, _by_model = PendingSignup.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def embed_snippet(*, form: SignupForm) -> str:
    """The plain HTML form a marketer pastes into another site: no script, posts to the hosted page."""
    action = site.current().link(reverse("messaging:signup-form", args=[form.slug]))
    offered = list(form.topics.all())
    if len(offered) == 1:  # signing up is the choice (as on the hosted page)
        topics = format_html('  <input type="hidden" name="topics" value="{}">', offered[0].key)
    else:  # never ticked in advance: a pre-ticked box is not consent
        topics = format_html_join(
            "\n", '  <label><input type="checkbox" name="topics" value="{}"> {}</label>', ((t.key, t.name) for t in offered)
        )
    extra = []
    if form.ask_name:
        extra.append(format_html('  <label>{} <input type="text" name="first_name" autocomplete="given-name"></label>', _("Name")))
    if form.ask_phone:
        extra.append(format_html('  <label>{} <input type="tel" name="phone" autocomplete="tel"></label>', _("Phone")))
    if form.ask_language:
        options = format_html_join("", '<option value="{}">{}</option>', ((code, name) for code, name in settings.LANGUAGES))
        extra.append(format_html('  <label>{} <select name="language">{}</select></label>', _("Language"), options))
    return str(
        format_html(
            '<form method="post" action="{}">\n'
            '  <label>{} <input type="email" name="email" required autocomplete="email"></label>\n'
            "{}\n{}\n"
            '  <div style="position:absolute;left:-10000px" aria-hidden="true">'
            '<input type="text" name="{}" tabindex="-1" autocomplete="off"></div>\n'
            "  <p>{}</p>\n"
            '  <button type="submit">{}</button>\n'
            "</form>",
            action,
            _("Email"),
            format_html_join("\n", "{}", ((item,) for item in extra)),
            topics,
            HONEYPOT,
            form.wording,
            _("Sign up"),
        )
    )
