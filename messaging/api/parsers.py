"""The request body parser: JSON, with the NUL character refused up front."""

from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


class JSONWithoutNulParser(JSONParser):
    """PostgreSQL text and jsonb columns cannot hold U+0000: a NUL anywhere in a body (a
    topic key looked up, a name, a metadata value) was a 500 from the database. One 400
    here covers every field, on both databases alike."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if contains_nul(data):
            raise ParseError(_("Text may not contain the NUL character (\\u0000)."))
        return data
