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
refuses any that got past (`provider_requires_template`). What a well-formed reference is
(`Template.clean()`) lives in messaging.models.validation.
"""

from typing import Any

from django.utils.translation import gettext as _

from messaging.content.rendering import render_parts
from messaging.errors import InvalidInput
from messaging.models import Channel, Provider, Template
from messaging.models.validation import parsed_variable


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
            rendered = render_parts({"text": parsed_variable(source, number)}, context)
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
