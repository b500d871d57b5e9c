"""Checks a model's `clean()` runs beyond its field validators, kept apart from the actions
so the models import no action module: what a WhatsApp approved template reference may be.
The approved template itself is filled and sent by messaging.whatsapp."""

import re
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from messaging.content.rendering import check_source, engine
from messaging.errors import InvalidInput
from messaging.models.contacts import Channel

MAX_VARIABLES = 50
SID = re.compile(r"[A-Za-z0-9_.:-]{2,100}")


def check_approved_template(template) -> None:
    """Template.clean(): the approved template reference is well formed (a ValidationError
    on the field, so the console form shows it there)."""
    sid, variables = (template.whatsapp_template_sid or "").strip(), template.whatsapp_variables
    template.whatsapp_template_sid = sid
    if variables in (None, ""):
        template.whatsapp_variables = variables = []
    if not sid and not variables:
        return
    if template.channel != Channel.WHATSAPP:
        # not on the field: the console shows these fields on WhatsApp templates only
        raise ValidationError(_("Only a WhatsApp template can name an approved WhatsApp template: clear it first."))
    if not sid:
        raise ValidationError({"whatsapp_template_sid": _("Give the approved template's Content SID for these variables.")})
    if not SID.fullmatch(sid):
        raise ValidationError({"whatsapp_template_sid": _("A Content SID is letters and digits, like HX0123456789abcdef.")})
    if not isinstance(variables, list) or len(variables) > MAX_VARIABLES or not all(isinstance(v, str) and v.strip() for v in variables):
        raise ValidationError(
            {"whatsapp_variables": _("A list of at most %(n)s non-empty template expressions, in order.") % {"n": MAX_VARIABLES}}
        )
    for number, source in enumerate(variables, start=1):
        try:
            parsed_variable(source, number)
        except InvalidInput as error:
            raise ValidationError({"whatsapp_variables": str(error)}) from None


@lru_cache(maxsize=256)
def parsed_variable(source: str, number: int):
    """A variable of an approved template, checked (no forbidden tag or name, no syntax
    error) and parsed once per process."""
    part = _("WhatsApp variable %(n)s") % {"n": number}
    check_source(source, part=part)
    return engine(html=False).from_string(source)
