"""Sender addresses: one check for every place a message's From is set (a campaign's
sender, `enqueue_message(from_address=…)`), so a value can never smuggle a header.

`Name <address@example.com>` or a bare address, exactly one mailbox, parsed by the
standard library's RFC 5322 header parser and the address checked by Django's email
validator. CR, LF and every other control character are refused outright: "a@b.com\\r\\n
From: victim@x.com" would otherwise become a second From header on the wire."""

import re
from email.errors import HeaderParseError
from email.headerregistry import HeaderRegistry

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from messaging.errors import InvalidInput

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_LENGTH = 254
_registry = HeaderRegistry()


def sender_error(value: str) -> str | None:
    """Why `value` cannot be a sender, or None (an empty value means the default sender)."""
    if not value:
        return None
    if CONTROL_CHARACTERS.search(value):
        return _("The sender cannot contain line breaks or control characters.")
    if len(value) > MAX_LENGTH:
        return _("The sender has at most %(n)s characters.") % {"n": MAX_LENGTH}
    try:
        header = _registry("From", value)
        addresses = header.addresses
    except (HeaderParseError, IndexError, ValueError, TypeError):
        return _("“%(value)s” is not a sender address (Name <address@example.com>).") % {"value": value}
    if len(addresses) != 1:
        return _("Give exactly one sender address.")
    if header.defects:
        return _("“%(value)s” is not a sender address (Name <address@example.com>).") % {"value": value}
    try:
        validate_email(addresses[0].addr_spec)
    except ValidationError:
        return _("“%(value)s” is not a valid email address.") % {"value": addresses[0].addr_spec}
    return None


def clean_sender(value: str | None, *, field: str = "from_address") -> str:
    """The sender, trimmed of surrounding spaces; InvalidInput naming `field` when it is not one."""
    value = (value or "").strip(" \t")
    if error := sender_error(value):
        raise InvalidInput(error, code="invalid_sender", fields={field: [error]})
    return value
