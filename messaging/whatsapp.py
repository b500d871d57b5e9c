"""WhatsApp approved templates.

WhatsApp lets a business start a conversation only with a template it approved beforehand;
the provider (Twilio: a Content SID, HX…) sends that template with its numbered variables
filled in, never free text. A messaging Template for the whatsapp channel may name its
approved template (`whatsapp_template_sid`) and, in order, what fills {{1}}, {{2}}…
(`whatsapp_variables`, each a template expression such as "{{ contact.first_name }}").

The variables are filled per contact when the message is queued (or, for a campaign's
set-based fan-out, when it is rendered in the worker) and stored on the message under
metadata[WHATSAPP_TEMPLATE_KEY], so what goes out is what the console shows and a retry
sends the same thing. A WhatsApp provider configured with "requires_template": true makes a
WhatsApp message without an approved template a clear error at enqueue, and the session
refuses any that got past (`provider_requires_template`).
"""

import re
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from messaging.content.rendering import check_source, engine, render_parts
from messaging.errors import InvalidInput
from messaging.models import Channel, Provider, Template

MAX_VARIABLES = 50
SID = re.compile(r"[A-Za-z0-9_.:-]{2,100}")


def check_approved_template(template: Template) -> None:
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
            _parsed(source, number)
        except InvalidInput as error:
            raise ValidationError({"whatsapp_variables": str(error)}) from None


@lru_cache(maxsize=256)
def _parsed(source: str, number: int):
    """Checked (no forbidden tag or name, no syntax error) and parsed once per process."""
    part = _("WhatsApp variable %(n)s") % {"n": number}
    check_source(source, part=part)
    return engine(html=False).from_string(source)


def provider_requires_template() -> bool:
    """Does an active WhatsApp provider say it only sends approved templates?"""
    return Provider.objects.filter(channel=Channel.WHATSAPP, is_active=True, config__requires_template=True).exists()


def approved_template(template: Template | None, context: dict[str, Any]) -> dict[str, Any] | None:
    """What metadata[WHATSAPP_TEMPLATE_KEY] holds for a message of `template` rendered with
    `context`: {"sid": …, "variables": {"1": …}}; None when it names no approved template.
    Raises InvalidInput naming the template and the variable (syntax error, missing name,
    empty value: WhatsApp refuses an empty parameter)."""
    if template is None or not template.whatsapp_template_sid:
        return None
    filled = {}
    for number, source in enumerate(template.whatsapp_variables or [], start=1):
        try:
            rendered = render_parts({"text": _parsed(source, number)}, context)
        except InvalidInput as error:
            raise _about(template, number, str(error)) from None
        if rendered.missing:
            raise _about(template, number, _("unknown name(s) %(names)s") % {"names": ", ".join(rendered.missing)})
        if not rendered.text.strip():
            raise _about(template, number, _('it is empty for this contact (add a default: {{ contact.first_name|default:"there" }})'))
        filled[str(number)] = rendered.text
    return {"sid": template.whatsapp_template_sid, "variables": filled}


def _about(template: Template, number: int, problem: str) -> InvalidInput:
    text = _("Variable %(n)s of the approved WhatsApp template of “%(name)s”: %(problem)s") % {
        "n": number,
        "name": template.name,
        "problem": problem,
    }
    return InvalidInput(text, code="whatsapp_template", fields={"whatsapp_variables": [text]})


def required_template_error(template: Template | None) -> InvalidInput:
    """The refusal when the provider requires an approved template and there is none."""
    if template is None:
        text = _(
            "WhatsApp messages here must use a template WhatsApp approved: send a WhatsApp template that names its approved "
            "template (Content SID), not free text."
        )
    else:
        text = _("The template “%(name)s” names no approved WhatsApp template (Content SID), which this WhatsApp provider requires.") % {
            "name": template.name
        }
    return InvalidInput(text, code="whatsapp_template_required", fields={"template": [text]})
