"""`{{ html|preview_document }}` and `{% preview_sandbox %}` for the console's email preview frames."""

from django import template

from messaging.content.previews import PREVIEW_SANDBOX, preview_document

register = template.Library()
register.filter("preview_document", preview_document)


@register.simple_tag
def preview_sandbox() -> str:
    return PREVIEW_SANDBOX
