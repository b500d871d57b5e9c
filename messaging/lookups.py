"""`field__in_batch=values`: SQL IN for the lists a send batch looks up (its message ids,
contact ids, addresses), whose values already are what the column stores.

Django's `in` runs every element through the field (get_prep_value, get_db_prep_value,
an expression check and its own SQL fragment): for the five or so 500-element lists of
each send batch that was about a tenth of the send path's CPU (bench/_profile_send.py).
This lookup checks the types once and passes the values as they are; anything but int
and str is refused, so a value that needs preparing (a datetime, a model) never slips
through unprepared."""

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject
from django.db.models.lookups import In

ALLOWED_TYPES = frozenset({int, str, type(None)})


class InBatch(In):
    lookup_name = "in_batch"

    def get_prep_lookup(self):
        given = tuple(self.rhs)
        if not set(map(type, given)) <= ALLOWED_TYPES:  # 500 values' types, checked in C
            raise TypeError("in_batch takes ints and strs, as the column stores them")
        values = dict.fromkeys(given)  # each once, in order
        values.pop(None, None)  # NULL never matches
        return list(values)

    def process_rhs(self, compiler, connection):
        if not self.rhs:
            raise EmptyResultSet
        return "(" + ", ".join(["%s"] * len(self.rhs)) + ")", tuple(self.rhs)


def register() -> None:
    Field.register_lookup(InBatch)
    ForeignObject.register_lookup(InBatch)  # related fields look their lookups up on their own
