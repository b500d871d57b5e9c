"""Contact actions and the rules for what a valid contact is.

The normalisers below are the only place that decides what an email, a phone number,
a language or a time zone may look like; `Contact.clean()` calls `clean_contact_fields`,
so the console form, CSV import and API all apply the same rules.
"""

import unicodedata
import zoneinfo
from functools import lru_cache
from typing import Any

import phonenumbers
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.audit import diff, record_audit, snapshot
from messaging.erasure import scrub_personal_data
from messaging.errors import DuplicateContact, InvalidInput
from messaging.models import Contact, Subscription
from messaging.storable import UnstorableValue, check_storable

EDITABLE_FIELDS = [
    "email",
    "phone",
    "external_id",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "attributes",
    "push_tokens",
]
IDENTITY_FIELDS = ("email", "phone", "external_id")


@lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_locales() -> set[str]:
    return {code for code, _name in settings.LANGUAGES}


# Control (Cc), format (Cf: U+202E right-to-left override, U+FEFF, zero-width joiners),
# surrogate (Cs), private-use (Co) and unassigned/noncharacter (Cn: U+FFFF) code points:
# invisible or reordering in an address, so one address could pass for another.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def hidden_character(value: str) -> str | None:
    """The first invisible, control, bidi-override or noncharacter code point, as U+XXXX."""
    for char in value:
        if unicodedata.category(char) in HIDDEN_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def normalise_email(value: str | None) -> str | None:
    """Trimmed and lower-cased, so one person is one contact whatever they typed."""
    value = (value or "").strip().lower()
    if not value:
        return None
    if code_point := hidden_character(value):  # never echo the address: it may reorder the message
        raise ValidationError(
            _("An email address may not contain invisible, control or direction characters (found %(char)s).") % {"char": code_point}
        )
    try:
        validate_email(value)
    except ValidationError as error:
        raise ValidationError(_("“%(value)s” is not a valid email address.") % {"value": value}) from error
    return value


def normalise_phone(value: str | None, *, region: str | None = None) -> str | None:
    """E.164 (+33612345678). Numbers without a country code are read in the default region."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, region or settings.MAILROOM_DEFAULT_REGION)
    except phonenumbers.NumberParseException as error:
        raise ValidationError(_("“%(value)s” is not a phone number.") % {"value": value}) from error
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(_("“%(value)s” is not a valid phone number.") % {"value": value})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_time_zone(value: str | None) -> str:
    value = (value or "").strip() or "UTC"
    if value not in known_time_zones():
        raise ValidationError(_("“%(value)s” is not a known time zone (e.g. Europe/Paris).") % {"value": value})
    return value


def normalise_locale(value: str | None) -> str:
    value = (value or "").strip().lower().replace("_", "-") or settings.LANGUAGE_CODE
    base = value.split("-")[0]
    if base not in known_locales():
        allowed = ", ".join(sorted(known_locales()))
        raise ValidationError(_("“%(value)s” is not a supported language (use one of %(allowed)s).") % {"value": value, "allowed": allowed})
    return base


def clean_contact_fields(contact: Contact) -> None:
    """Normalise a contact in place; raise one ValidationError naming every bad field."""
    errors: dict[str, list[str]] = {}
    for field in EDITABLE_FIELDS:  # NUL, unpaired surrogates, absurd nesting: refused before anything reads them
        try:
            check_storable(getattr(contact, field))
        except UnstorableValue as error:
            errors[field] = [error.message]
    if errors:
        raise ValidationError(errors)
    for field, normalise in (
        ("email", normalise_email),
        ("phone", normalise_phone),
        ("timezone", normalise_time_zone),
        ("locale", normalise_locale),
    ):
        try:
            setattr(contact, field, normalise(getattr(contact, field)))
        except ValidationError as error:
            errors.setdefault(field, []).extend(error.messages)
    contact.external_id = (contact.external_id or "").strip() or None
    if not isinstance(contact.attributes, dict):
        errors.setdefault("attributes", []).append(_("Attributes must be a JSON object."))
    if not isinstance(contact.push_tokens, list):
        errors.setdefault("push_tokens", []).append(_("Push tokens must be a JSON list."))
    if not errors and not contact.erased_at and not any(getattr(contact, f) for f in IDENTITY_FIELDS):
        errors["__all__"] = [_("A contact needs an email address, a phone number or an external id.")]
    if errors:
        raise ValidationError(errors)


def _duplicate_of(contact: Contact) -> str | None:
    """The identity field another contact already holds, if any."""
    others = Contact.objects.exclude(pk=contact.pk)
    for field in IDENTITY_FIELDS:
        value = getattr(contact, field)
        if value and others.filter(**{field: value}).exists():
            return field
    return None


def _validated(contact: Contact) -> Contact:
    try:
        clean_contact_fields(contact)  # before field validators, which see raw input
        contact.full_clean(validate_unique=False)
    except ValidationError as error:
        raise InvalidInput.from_validation_error(error) from error
    if field := _duplicate_of(contact):
        raise DuplicateContact(
            _("A contact with this %(field)s already exists.") % {"field": Contact._meta.get_field(field).verbose_name},
            fields={field: [_("Already used by another contact.")]},
        )
    return contact


@transaction.atomic
def create_contact(*, actor: AbstractBaseUser | None, **fields: Any) -> Contact:
    """Create a contact from plain fields (see EDITABLE_FIELDS)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(_("Unknown contact fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    contact = _validated(Contact(**fields))
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError as error:  # lost a race with a concurrent create
        raise DuplicateContact(_("A contact with this email, phone or external id already exists.")) from error
    record_audit(actor=actor, verb="created", target=contact, changes=diff({}, snapshot(contact, EDITABLE_FIELDS)))
    return contact


@transaction.atomic
def update_contact(*, actor: AbstractBaseUser | None, contact: Contact, **changes: Any) -> Contact:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(_("Unknown contact fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))})
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.erased_at:
        raise InvalidInput(_("An erased contact cannot be changed."))
    before = snapshot(contact, EDITABLE_FIELDS)
    for name, value in changes.items():
        setattr(contact, name, value)
    _validated(contact)
    after = snapshot(contact, EDITABLE_FIELDS)
    changed = diff(before, after)
    if changed:
        try:
            with transaction.atomic():
                contact.save(update_fields=[*changed, "updated_at"])
        except IntegrityError as error:
            raise DuplicateContact(_("A contact with this email, phone or external id already exists.")) from error
        record_audit(actor=actor, verb="updated", target=contact, changes=changed)
    return contact


@transaction.atomic
def remove_push_tokens(*, contact_id: int, tokens: list[str]) -> list[str]:
    """Drop device tokens the push service says are dead (app uninstalled, token expired).
    Locks the row so a token the app registers meanwhile is not lost; returns what is left.
    A system change, audited like any other (the audit log redacts the tokens)."""
    contact = Contact.objects.select_for_update().filter(pk=contact_id).first()
    if contact is None or not isinstance(contact.push_tokens, list):
        return []
    before = list(contact.push_tokens)
    contact.push_tokens = [token for token in before if token not in set(tokens)]
    if contact.push_tokens != before:
        contact.save(update_fields=["push_tokens", "updated_at"])
        record_audit(actor=None, verb="updated", target=contact, changes={"push_tokens": {"before": before, "after": contact.push_tokens}})
    return contact.push_tokens


@transaction.atomic
def delete_contact(*, actor: AbstractBaseUser | None, contact: Contact) -> Contact:
    """Soft delete: the contact stops receiving anything but its history stays."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.deleted_at is None:
        contact.deleted_at = timezone.now()
        contact.save(update_fields=["deleted_at", "updated_at"])
        record_audit(actor=actor, verb="deleted", target=contact)
    return contact


@transaction.atomic
def erase_contact(*, actor: AbstractBaseUser | None, contact: Contact) -> Contact:
    """GDPR erasure: remove everything that identifies the person, here and in every table
    that kept it (messaging.erasure; higher apps through `contact_erased`), keep the rows
    so counts and delivery statistics stay right. One transaction. Irreversible."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.erased_at:
        return contact
    scrubbed = scrub_personal_data(contact=contact)
    now = timezone.now()
    contact.email = contact.phone = contact.external_id = None
    contact.first_name = contact.last_name = ""
    contact.attributes, contact.push_tokens = {}, []
    contact.erased_at = now
    contact.deleted_at = contact.deleted_at or now
    contact.save()
    contact.subscriptions.update(status=Subscription.Status.UNSUBSCRIBED)
    # Consent records stay (proof of what was agreed) but lose their network details.
    for record in contact.consent_records.exclude(ip_address=None, user_agent=""):
        record.ip_address, record.user_agent = None, ""
        record._erasing = True
        record.save(update_fields=["ip_address", "user_agent"])
    # Counts only: the entry says what was scrubbed, not whom it was about.
    record_audit(actor=actor, verb="erased", target=contact, changes={"scrubbed": {"before": None, "after": scrubbed}})
    return contact
