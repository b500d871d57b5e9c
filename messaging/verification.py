"""Email verification (contacts) and password reset (console users): signed, purpose-salted,
short-lived, single-use links, throttled per address and per IP (seed 000's flows).

Single use without a table of used tokens: each token carries a digest of the state it
changes, so using it makes it stale.
- verification: a digest of the address being verified; a token issued before the
  address was verified is used (410); one for another address is invalid (400).
- password reset: a digest of the user's password hash and email; setting the password
  changes the hash, so the same link (or any older one) is used (410).
Links never carry an address or an id in clear (ids are concealed, see messaging.tokens).
"""

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from messaging import site
from messaging.audit import record_audit
from messaging.contact_fields import normalise_email
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.throttle import allow
from messaging.delivery.work import enqueue_after_commit
from messaging.errors import InvalidInput, MailroomError
from messaging.models import Channel, Contact, OutboxMessage
from messaging.secrets import marker
from messaging.tokens import TokenInvalid, TokenService, TokenUsed, conceal_id

VERIFY = TokenService("mailroom.verify-email", max_age=lambda: settings.MAILROOM_VERIFY_LINK_MAX_AGE_HOURS * 3600)
RESET = TokenService("mailroom.password-reset", max_age=lambda: settings.MAILROOM_RESET_LINK_MAX_AGE_MINUTES * 60)


class Throttled(MailroomError):
    code = "throttled"


def _digest(purpose: str, value: str) -> str:
    return salted_hmac(purpose, value, algorithm="sha256").hexdigest()[:20]


def _address_key(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:24]  # cache keys never hold the address


def _check_throttle(*, scope: str, address: str, ip_address: str | None) -> None:
    over = not allow(scope=f"{scope}-address", key=_address_key(address))
    if ip_address and not allow(scope=f"{scope}-ip", key=ip_address):
        over = True
    if over:
        raise Throttled(_("Too many requests. Please wait a while before asking again."))


def _link(name: str, token: str) -> str:
    return site.current().link(reverse(name, args=[token]))


# --- email verification ------------------------------------------------------------------
def send_email_verification(*, actor: AbstractBaseUser | None, contact: Contact, ip_address: str | None = None) -> OutboxMessage:
    """Queue a transactional email with a link that confirms the contact's address."""
    if not contact.email or contact.erased_at or contact.deleted_at:
        raise InvalidInput(_("This contact has no email address to verify."))
    _check_throttle(scope="verification", address=contact.email, ip_address=ip_address)
    token = VERIFY.make({"c": conceal_id(contact.pk), "e": _digest("mailroom.verify-email", contact.email)})
    url = _link("messaging:verify-email", token)
    with transaction.atomic(), translation.override(contact.locale):
        message = enqueue_message(
            channel=Channel.EMAIL,
            contact=contact,
            subject=_("Confirm your email address"),
            text=_("Please confirm your email address by opening this link:\n%(url)s\n\nIf you did not ask for this, ignore this message.")
            % {"url": marker("url")},
            secrets={"url": url},  # sealed: no staff member can read the link (messaging.secrets)
            priority=OutboxMessage.Priority.TRANSACTIONAL,
            track_links=False,  # a secret link is never stored as a TrackedLink
            metadata={"purpose": "email_verification"},
        )
        record_audit(actor=actor, verb="verification-sent", target=contact)
    return message


def contact_for_verification(*, token: str) -> Contact:
    """The contact a verification link is for; raises TokenInvalid/TokenExpired/TokenUsed."""
    contact_pk, read = VERIFY.read_id(token, "c")
    contact = Contact.objects.filter(pk=contact_pk, erased_at=None, deleted_at=None).first()
    if contact is None or not contact.email or read.data.get("e") != _digest("mailroom.verify-email", contact.email):
        raise TokenInvalid
    if contact.email_verified_at is not None and contact.email_verified_at >= read.issued_at:
        raise TokenUsed
    return contact


@transaction.atomic
def verify_email(*, token: str) -> Contact:
    """Mark the contact's address as verified. The same link works once."""
    contact = contact_for_verification(token=token)
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    contact_for_verification(token=token)  # again under the lock: two clicks at once, one wins
    contact.email_verified_at = timezone.now()
    contact.save(update_fields=["email_verified_at", "updated_at"])
    record_audit(actor=None, verb="email-verified", target=contact)
    return contact


# --- password reset --------------------------------------------------------------------------
def _reset_state(user: AbstractBaseUser) -> str:
    return _digest("mailroom.password-reset", f"{user.password}|{user.email}")


def _reset_address(email: str) -> str:
    try:
        address = normalise_email(email)
    except ValidationError:
        address = None
    if not address:
        raise InvalidInput(_("Enter a valid email address."), fields={"email": [_("Enter a valid email address.")]})
    return address


def queue_password_reset(*, email: str, ip_address: str | None = None, language: str | None = None) -> None:
    """What the public page calls: the same work whether or not an account has this address
    (check, throttle, queue one task), so its timing tells nothing; the lookup and the email
    happen on the cluster (messaging.tasks.send_password_reset), after the response."""
    address = _reset_address(email)
    _check_throttle(scope="reset", address=address, ip_address=ip_address)
    enqueue_after_commit("messaging.tasks.send_password_reset", address=address, language=language or settings.LANGUAGE_CODE)


def request_password_reset(*, email: str, ip_address: str | None = None, language: str | None = None) -> bool:
    """Email a reset link to the active console user with this address. Returns whether
    one was sent; the page never tells (no account enumeration). Throttled either way."""
    address = _reset_address(email)
    _check_throttle(scope="reset", address=address, ip_address=ip_address)
    return send_password_reset(address=address, language=language)


def send_password_reset(*, address: str, language: str | None = None) -> bool:
    """The lookup and the email (the task behind queue_password_reset); whether one was sent."""
    user = get_user_model().objects.filter(email__iexact=address, is_active=True).order_by("pk").first()
    if user is None or not user.has_usable_password():
        return False
    token = RESET.make({"u": conceal_id(user.pk), "s": _reset_state(user)})
    url = _link("messaging:password-reset-confirm", token)
    minutes = settings.MAILROOM_RESET_LINK_MAX_AGE_MINUTES
    with transaction.atomic(), translation.override(language or settings.LANGUAGE_CODE):
        enqueue_message(
            channel=Channel.EMAIL,
            to=user.email,
            subject=_("Reset your Mailroom password"),
            text=_(
                "Someone asked to reset the password of your Mailroom account. To choose a new one, open this link "
                "within %(minutes)s minutes:\n%(url)s\n\nIf it was not you, ignore this message: your password stays as it is."
            )
            % {"url": marker("url"), "minutes": minutes},
            secrets={"url": url},  # sealed: reading the outbox must not let anyone take this account over
            priority=OutboxMessage.Priority.TRANSACTIONAL,
            track_links=False,
            metadata={"purpose": "password_reset"},
        )
        record_audit(actor=None, verb="password-reset-requested", target=user)
    return True


def user_for_reset(*, token: str) -> AbstractBaseUser:
    """The user a reset link is for; raises TokenInvalid/TokenExpired/TokenUsed."""
    user_pk, read = RESET.read_id(token, "u")
    user = get_user_model().objects.filter(pk=user_pk, is_active=True).first()
    if user is None:
        raise TokenInvalid
    if read.data.get("s") != _reset_state(user):
        raise TokenUsed  # the password (or the address) changed since: this link did its job
    return user


@transaction.atomic
def reset_password(*, token: str, new_password: str) -> AbstractBaseUser:
    """Set a new password through a reset link; the link stops working at once."""
    user = user_for_reset(token=token)
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    user_for_reset(token=token)  # again under the lock
    try:
        validate_password(new_password, user)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), fields={"password": error.messages}) from error
    user.set_password(new_password)
    user.save(update_fields=["password"])
    record_audit(actor=None, verb="password-reset", target=user)
    return user
