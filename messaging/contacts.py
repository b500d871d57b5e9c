"""Contact actions: create, update, delete and erase a contact.

What a valid contact is lives in `messaging.contact_fields`; the actions call
`clean_contact_fields`, like `Contact.clean()`, so every way in applies the same rules.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from messaging.audit import diff, record_audit, snapshot
from messaging.contact_fields import EDITABLE_FIELDS, IDENTITY_FIELDS, clean_contact_fields
from messaging.erasure import scrub_personal_data
from messaging.errors import DuplicateContact, InvalidInput
from messaging.models import Contact, Subscription


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
def update_contact_attributes(
    *,
    actor: AbstractBaseUser | None,
    contact: Contact,
    values: dict[str, Any] | None = None,
    unset: list[str] | tuple[str, ...] = (),
    add_tag: str = "",
    remove_tag: str = "",
) -> tuple[Contact, list[str]]:
    """Set and clear some attributes and add or remove a tag (tags live in the `tags`
    attribute, a list), leaving the other attributes as they are. Goes through
    `update_contact`, so the same rules hold (an erased contact cannot be changed, every
    value must be storable) and the change is audited. Returns the contact and the names of
    the attributes that changed."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    before = dict(contact.attributes or {})
    attributes = {**before, **(values or {})}
    for name in unset:
        attributes.pop(name, None)
    tags = list(attributes.get("tags") or [])
    if add_tag and add_tag not in tags:
        tags.append(add_tag)
    if remove_tag and remove_tag in tags:
        tags.remove(remove_tag)
    if tags or "tags" in attributes:
        attributes["tags"] = tags
    changed = sorted(name for name in set(attributes) | set(before) if attributes.get(name) != before.get(name))
    if changed:
        contact = update_contact(actor=actor, contact=contact, attributes=attributes)
    return contact, changed


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
