"""The layout a new email template starts from in the editor: a small responsive MJML page
with a header, a body and the footer every marketing email needs (view in browser,
preferences, {{ unsubscribe_url }}). One file per language under starters/; English when
the template's language has none."""

import functools
from pathlib import Path

from django.conf import settings

from messaging.models import Channel, Template

STARTERS = Path(__file__).parent / "starters"


@functools.cache
def _read(locale: str) -> str:
    path = STARTERS / f"{locale}.mjml"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def starter_body(template: Template) -> str:
    """The starter MJML for an email template in its language; nothing for SMS or push."""
    if template.channel != Channel.EMAIL:
        return ""
    return _read(template.locale.split("-")[0]) or _read(settings.LANGUAGE_CODE) or _read("en")
