"""What a valid contact is: the rules for each field, in one place.

The normalisers below are the only place that decides what an email, a phone number,
a language or a time zone may look like. `Contact.clean()` calls `clean_contact_fields`,
and so do the contact actions (messaging.contacts), so the console form, the CSV import
and the API all apply the same rules. A leaf: it imports no model and no action.
"""

import unicodedata
import zoneinfo
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.utils.translation import gettext as _

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


def clean_contact_fields(contact: models.Model) -> None:
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
