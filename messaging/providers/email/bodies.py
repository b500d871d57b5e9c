"""The text and HTML of an email as they go out: per-message links and secrets filled in,
and the marketing footer (unsubscribe link, postal address) in the contact's language."""

from functools import lru_cache

from django.utils import translation
from django.utils.html import escape
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from messaging.delivery.tracking import fill_message_marker
from messaging.models import Contact, OutboxMessage
from messaging.providers.email.headers import UNSUBSCRIBE_MARKER, unsubscribe_url
from messaging.secrets import redact, reveal
from messaging.site import current as current_site


def attach_languages(messages: list[OutboxMessage]) -> None:
    """Note each marketing email's contact's language on it, for the words Mailroom adds
    itself (the footer's): one query for a batch instead of one per message."""
    wanted = {m.contact_id for m in messages if m.is_marketing and m.contact_id and "_language" not in m.__dict__}
    if not wanted:
        return
    locales = dict(Contact.objects.filter(pk__in_batch=wanted).values_list("pk", "locale"))
    for message in messages:
        if message.contact_id in wanted:
            message.__dict__["_language"] = locales.get(message.contact_id) or None


def message_language(message: OutboxMessage) -> str | None:
    """The language of the words Mailroom adds to a message: its contact's (the body is
    already the contact's language variant), else the active one."""
    if "_language" not in message.__dict__ and message.contact_id:
        locale = Contact.objects.filter(pk=message.contact_id).values_list("locale", flat=True).first()
        message.__dict__["_language"] = locale or None
    return message.__dict__.get("_language") or get_language()


def marketing_footer(message: OutboxMessage, *, with_link: bool = True) -> tuple[str, str]:
    """The visible unsubscribe link and postal address every marketing email must carry
    (the link only when the body does not already have one), labelled in the contact's language."""
    url = unsubscribe_url(message)
    address = current_site().postal_address
    label = _unsubscribe_label(message_language(message))
    link_text = f"{label}: {url}\n" if with_link else ""
    link_html = f'<a href="{url}">{label}</a><br>' if with_link else ""
    text = f"\n\n--\n{link_text}{address}\n"
    html = f'<div style="font-size:12px;color:#666;margin-top:24px">{link_html}{escape(address)}</div>'
    return text, html


@lru_cache(maxsize=32)
def _unsubscribe_label(language: str | None) -> str:
    with translation.override(language):  # looked up once per language, not twice per email
        return _("Unsubscribe")


def final_bodies(message: OutboxMessage, *, with_secrets: bool = True) -> tuple[str, str]:
    """Text and HTML exactly as they go out: per-message links filled in, the secrets of a
    sensitive message filled in (only when the sender attached them; `with_secrets=False`
    hides them, for what is stored), and the marketing footer (unsubscribe link, postal
    address) added."""
    has_link = UNSUBSCRIBE_MARKER in message.body_html or UNSUBSCRIBE_MARKER in message.body_text
    text, html = fill_message_marker(message.body_text, message.id), fill_message_marker(message.body_html, message.id)
    if message.is_sensitive:
        text, html = (reveal(message, text), reveal(message, html)) if with_secrets else (redact(text), redact(html))
    if message.is_marketing:
        footer_text, footer_html = marketing_footer(message, with_link=not has_link)
        text = (text or "") + footer_text
        if html:
            html = html.replace("</body>", footer_html + "</body>") if "</body>" in html else html + footer_html
    return text, html
