"""The request body parser: JSON that every database can store, refused up front otherwise."""

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from messaging.storable import UnstorableValue, check_storable, field_name, too_deep_message


class StorableJSONParser(JSONParser):
    """PostgreSQL text and jsonb columns cannot hold U+0000, and no UTF-8 encoder writes an
    unpaired surrogate (`"\\ud800"`): a NUL was a 500 from the database, a stored surrogate
    made every later answer that held it a 500. JSON nested 1,000 levels deep overflowed
    Python's recursion. One 400 here covers every field of every endpoint, on both
    databases alike, and names the field (never echoing the bad text)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON parse error - %(reason)s") % {"reason": too_deep_message()}) from None
        try:
            check_storable(data)
        except UnstorableValue as error:
            raise ValidationError({field_name(error.path): [error.message]}) from None
        return data
