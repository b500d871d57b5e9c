"""Text that every database and every JSON encoder can store and give back.

Two kinds of character pass Python but not the edges: NUL (U+0000), which PostgreSQL text
and jsonb refuse, and unpaired surrogates (U+D800–U+DFFF alone, e.g. JSON "\\ud800"), which
no UTF-8 encoder writes, so a stored one made every later API answer that held it a 500.
And JSON nested a thousand levels deep overflows Python's recursion. This module is the
one rule: input is refused where it enters (the API's JSON parser, contact validation,
the CSV imports, webhooks), naming the field, and never echoing the bad text back.
"""

import json
import re

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.utils.translation import gettext as _

from messaging.errors import InvalidInput

# Deeper than any attribute, property or payload we keep; far below Python's recursion limit.
MAX_JSON_DEPTH = 32
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# In a Python str a surrogate code point is always unpaired (a pair decodes to one character).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class UnstorableValue(ValueError):
    """A value that cannot be stored: `path` names where (a tuple of keys and indexes)."""

    def __init__(self, message: str, *, path: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.path = path


def unstorable_message() -> str:
    return _("Contains a character that cannot be stored (NUL \\u0000, or an unpaired surrogate such as \\ud800).")


def too_deep_message() -> str:
    return _("Nested more than %(limit)s levels deep.") % {"limit": MAX_JSON_DEPTH}


def has_unstorable_text(text: str) -> bool:
    return UNSTORABLE.search(text) is not None


def check_storable(value: object, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise UnstorableValue for the first string or key (at any depth) that cannot be
    stored, or for nesting deeper than max_depth. Iterative: no recursion to overflow."""
    stack: list[tuple[object, tuple[str, ...], int]] = [(value, (), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if has_unstorable_text(item):
                raise UnstorableValue(unstorable_message(), path=path)
        elif isinstance(item, dict):
            if depth >= max_depth:
                raise UnstorableValue(too_deep_message(), path=path)
            for key, child in reversed(item.items()):
                if isinstance(key, str) and has_unstorable_text(key):
                    raise UnstorableValue(unstorable_message(), path=path)  # the key is the bad text: name its object
                stack.append((child, (*path, str(key)), depth + 1))
        elif isinstance(item, (list, tuple)):
            if depth >= max_depth:
                raise UnstorableValue(too_deep_message(), path=path)
            stack.extend((child, (*path, str(index)), depth + 1) for index, child in reversed(list(enumerate(item))))


def field_name(path: tuple[str, ...], *, prefix: str = "") -> str:
    """The dotted name the API and forms report (`attributes`, `events.0.properties.x`)."""
    return ".".join(part for part in (prefix, *path) if part) or "non_field_errors"


def validate_storable(value: object) -> None:
    """A Django validator: a form or model field's ValidationError."""
    try:
        check_storable(value)
    except UnstorableValue as error:
        raise ValidationError(error.message, code="unstorable") from None


def require_storable(**values: object) -> None:
    """For actions: raise InvalidInput naming each keyword whose value cannot be stored."""
    fields: dict[str, list[str]] = {}
    for name, value in values.items():
        try:
            check_storable(value)
        except UnstorableValue as error:
            fields[name] = [error.message]
    if fields:
        raise InvalidInput("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items()), fields=fields)


def loads_storable(text: str | bytes) -> object:
    """json.loads for bodies from outside (webhooks): ValueError (UnstorableValue or
    json's own) for anything we would refuse to store, never RecursionError."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise UnstorableValue(too_deep_message()) from None
    check_storable(data)
    return data


class StorableJSONFormField(forms.JSONField):
    """A console JSON field that refuses what cannot be stored, naming the problem, and
    shows the text as typed (re-encoding it would put the bad character in the page)."""

    default_validators = [validate_storable]

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(too_deep_message(), code="unstorable") from None

    def prepare_value(self, value):
        # A row stored before input was checked must still open: its bad characters show as U+FFFD.
        return LONE_SURROGATE.sub("\ufffd", super().prepare_value(value))

    def bound_data(self, data, initial):
        try:
            value = super().bound_data(data, initial)
            check_storable(value)
        except (RecursionError, UnstorableValue):
            return InvalidJSONInput(data)
        return value
