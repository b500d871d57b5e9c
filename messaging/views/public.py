"""Public endpoints for recipients: open pixel, tracked clicks, one-click unsubscribe, the
preference center and view-in-browser. No login: every link carries a signed,
purpose-salted, expiring token (messaging.tokens), and no address or id appears in clear.

Bad input gets a plain page that says nothing about anyone: a tampered token 400, an
expired or used one 410, an unknown link or message 404, a flood 429.
"""

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone, translation
from django.utils.csp import CSP
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from messaging.consent import ConsentContext
from messaging.delivery.retention import pruned_notice
from messaging.delivery.throttle import over_limit, throttled
from messaging.delivery.tracking import CLICKS, GIF, OPENS, message_links, read_public_token, record_hit, tracked_url
from messaging.digest import is_held_or_in_digest
from messaging.ids import parse_id
from messaging.models import Channel, ConsentRecord, DeliveryEvent, Frequency, OutboxMessage, Topic
from messaging.preferences import PAUSE_WEEKS, consent_context, current_choices, unsubscribe_from_message, update_preferences
from messaging.providers.email.bodies import final_bodies
from messaging.secrets import hidden_notice
from messaging.tokens import TokenError

# These pages are ours alone: a strict policy, no script at all.
PUBLIC_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.NONE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}


# --- the plain error page ------------------------------------------------------------------
def _problems() -> dict[str, tuple[int, str, str]]:
    return {
        "invalid": (
            400,
            _("This link does not work"),
            _("It may have been copied incompletely. Use the link in a more recent message, or contact us."),
        ),
        "expired": (410, _("This link has expired"), _("Links in our messages only work for a while. Use a more recent message.")),
        "used": (410, _("This link was already used"), _("Each of these links works once. If you still need to, ask for a new one.")),
        "not_found": (404, _("Nothing here"), _("This link does not lead anywhere. Check that it was copied completely.")),
        "throttled": (429, _("Too many requests"), _("Please wait a minute, then try again.")),
        "gone": (410, _("This message is no longer available"), _("Its recipient's personal data was erased at their request.")),
    }


@csp_override(PUBLIC_CSP)
def problem(request: HttpRequest, reason: str, *, retry_after: int | None = None) -> HttpResponse:
    status, title, text = _problems()[reason]
    response = TemplateResponse(request, "public/problem.html", {"title": title, "text": text}, status=status)
    response["Cache-Control"] = "no-store"
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def refused(request: HttpRequest, window: int) -> HttpResponse:
    return problem(request, "throttled", retry_after=window)


def token_problem(request: HttpRequest, error: TokenError) -> HttpResponse:
    return problem(request, error.reason)


# --- tracking: one insert, no page -----------------------------------------------------------
def _pixel(status: int = 200) -> HttpResponse:
    response = HttpResponse(GIF, content_type="image/gif", status=status)
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0"
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


@require_http_methods(["GET", "HEAD"])
@throttled("tracking", refused=lambda request, window: _pixel(429))
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """The 43-byte GIF, whatever happens (an email client shows nothing either way); the
    status says what happened. A valid token costs one INSERT and no read."""
    try:
        message_pk, read = OPENS.read_id(token, "m")
    except TokenError as error:
        return _pixel(error.status)
    recorded = record_hit(
        kind=DeliveryEvent.Kind.OPENED, message_pk=message_pk, token=read, user_agent=request.META.get("HTTP_USER_AGENT", "")
    )
    return _pixel(200 if recorded else 404)


@require_http_methods(["GET", "HEAD"])
@throttled("tracking", refused=refused)
def click(request: HttpRequest, link_id: int, token: str) -> HttpResponse:
    """Redirect to one of the message's own stored links, never to a URL from the request."""
    url = tracked_url(link_id)
    if url is None:
        return problem(request, "not_found")
    try:
        message_pk, read = CLICKS.read_id(token, "m")
    except TokenError as error:
        return token_problem(request, error)
    if not message_links(message_pk, link_id):
        return problem(request, "not_found")
    record_hit(
        kind=DeliveryEvent.Kind.CLICKED,
        message_pk=message_pk,
        token=read,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        link_id=link_id,
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- unsubscribe, preferences, view in browser ----------------------------------------------
def _message_or_problem(request: HttpRequest, token: str, marker: str) -> OutboxMessage | HttpResponse:
    """A tampered or expired token gets a plain page that says nothing about anyone."""
    try:
        pk = read_public_token(token, marker)
    except TokenError as error:
        return token_problem(request, error)
    message = OutboxMessage.objects.select_related("contact", "topic").filter(pk=pk).first()
    if message is None:
        return problem(request, "not_found")
    return message


def _activate_language(message: OutboxMessage) -> None:
    if message.contact is not None:
        translation.activate(message.contact.locale)


@csp_override(PUBLIC_CSP)
@csrf_exempt  # authenticated by the signed token; RFC 8058 clients post without a CSRF token
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (link scanners follow GETs); POST acts. A POST with the RFC 8058 body
    `List-Unsubscribe=One-Click` (what mail clients send) unsubscribes at once and answers
    200 with no redirect; the confirm page's form posts a scope.

    Never refused for rate with a valid token: mailbox providers post every one-click of
    their users from a few addresses, and a dropped one leaves a person subscribed. Only
    requests without a valid token count towards the "pages" limit."""
    message = _message_or_problem(request, token, "__MAILROOM_UNSUBSCRIBE__")
    if isinstance(message, HttpResponse):
        return refused(request, settings.MAILROOM_RATE_LIMITS["pages"][1]) if over_limit(request, "pages") else message
    _activate_language(message)
    context = {"message": message, "topic": message.topic, "token": token}
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        everything = request.POST.get("scope") == "all"
        unsubscribe_from_message(message=message, everything=everything, context=_unsubscribe_context(request, one_click))
        if one_click:
            return HttpResponse(_("You are unsubscribed."), content_type="text/plain; charset=utf-8", status=200)
        return TemplateResponse(request, "public/unsubscribed.html", context | {"everything": everything})
    return TemplateResponse(request, "public/unsubscribe.html", context)


def _unsubscribe_context(request: HttpRequest, one_click: bool) -> ConsentContext:
    base = consent_context(request)
    return ConsentContext(
        source=ConsentRecord.Source.UNSUBSCRIBE_LINK,
        ip_address=base.ip_address,
        user_agent=base.user_agent,
        wording_version="rfc8058-one-click" if one_click else "unsubscribe-page-v1",
    )


def _read_preferences(post) -> dict:
    """The form as plain values; anything unknown is ignored rather than trusted."""
    wanted = set()
    for value in post.getlist("choice"):
        topic_id, _sep, channel = value.partition(":")
        if (pk := parse_id(topic_id)) is not None:
            wanted.add((pk, channel))
    everything = post.get("action") == "unsubscribe_all" or bool(post.get("everything"))
    pause = post.get("pause", "")
    return {
        "wanted": set() if everything else wanted,
        "locale": post.get("locale") if post.get("locale") in dict(settings.LANGUAGES) else None,
        "frequency": post.get("frequency") if post.get("frequency") in Frequency.values and not everything else None,
        "pause_weeks": parse_id(pause) if parse_id(pause) in (*PAUSE_WEEKS, 0) and not everything else None,
        "everything": everything,
    }


@csp_override(PUBLIC_CSP)
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("pages", refused=refused)
def preferences_page(request: HttpRequest, token: str) -> HttpResponse:
    message = _message_or_problem(request, token, "__MAILROOM_PREFERENCES__")
    if isinstance(message, HttpResponse):
        return message
    contact = message.contact
    if contact is None or contact.erased_at or contact.deleted_at:
        return problem(request, "not_found")
    saved = everything = False
    if request.method == "POST":
        choices = _read_preferences(request.POST)
        everything = choices.pop("everything")
        update_preferences(contact=contact, context=consent_context(request), **choices)
        contact.refresh_from_db()
        saved = True
    translation.activate(contact.locale)
    chosen = current_choices(contact)
    channels = [channel for channel in (Channel.EMAIL, Channel.SMS) if getattr(contact, "email" if channel == Channel.EMAIL else "phone")]
    rows = [
        {
            "topic": topic,
            "boxes": [
                {"channel": channel, "label": Channel(channel).label, "checked": (topic.pk, channel) in chosen} for channel in channels
            ],
        }
        for topic in Topic.objects.filter(kind=Topic.Kind.MARKETING)
    ]
    paused_until = contact.paused_until if contact.paused_until and contact.paused_until > timezone.now() else None
    return TemplateResponse(
        request,
        "public/preferences.html",
        {
            "rows": rows,
            "saved": saved,
            "everything": everything,
            "languages": settings.LANGUAGES,
            "contact_locale": contact.locale,
            "frequencies": Frequency.choices,
            "frequency": contact.marketing_frequency,
            "pause_weeks": PAUSE_WEEKS,
            "paused_until": paused_until,
        },
    )


_HTML_TAG = re.compile(r"<html\b[^>]*>", re.IGNORECASE)
_HEAD_TAG = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_LANG = re.compile(r"""\slang\s*=\s*["']?(?!und\b)[A-Za-z]""", re.IGNORECASE)
_NAMED_TITLE = re.compile(r"<title\b[^>]*>\s*[^<\s]", re.IGNORECASE)


def as_web_page(html: str, *, title: str, language: str) -> str:
    """An email body as a web page a screen reader can use: a language on <html> (an email
    often has none, and MJML writes "und") and a <title> (the subject) when it has none.
    The body itself is left exactly as sent; a fragment gets a minimal document around it."""
    head = f"<title>{escape(title)}</title>"
    opening = _HTML_TAG.search(html)
    if opening is None:
        return f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">{head}</head><body>{html}</body></html>'
    if _NAMED_TITLE.search(html) is None:
        if head_tag := _HEAD_TAG.search(html, opening.end()):
            html = html[: head_tag.end()] + head + html[head_tag.end() :]
        else:
            html = html[: opening.end()] + f"<head>{head}</head>" + html[opening.end() :]
    tag = opening.group(0)
    if _LANG.search(tag) is None:
        fixed = re.sub(r"""\slang\s*=\s*["']?und["']?""", "", tag, flags=re.IGNORECASE)
        fixed = fixed[:5] + f' lang="{escape(language)}"' + fixed[5:]
        html = html[: opening.start()] + fixed + html[opening.end() :]
    return html


# The email as sent: its own inline styles and remote images, nothing that runs or posts.
EMAIL_PAGE_CSP = {
    "default-src": [CSP.NONE],
    "style-src": [CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "https:"],
    "frame-ancestors": [CSP.NONE],
    # default-src covers neither: a stored <form> or <base> in a body goes nowhere.
    "form-action": [CSP.NONE],
    "base-uri": [CSP.NONE],
}


@csp_override(EMAIL_PAGE_CSP)
def _as_email_page(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    return response


@csp_override(PUBLIC_CSP)
def _as_public_page(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Our own page (a problem, the retention notice): our stylesheet, no script."""
    return response


@require_http_methods(["GET", "HEAD"])
@throttled("pages", refused=refused)
def view_in_browser(request: HttpRequest, token: str) -> HttpResponse:
    """The email as it was sent (links, footer and all), with no script allowed to run."""
    message = _message_or_problem(request, token, "__MAILROOM_VIEW__")
    if isinstance(message, HttpResponse):
        return _as_public_page(request, message)
    if message.status != OutboxMessage.Status.SENT and not is_held_or_in_digest(message):
        return _as_public_page(request, problem(request, "not_found"))  # a held message is read through the weekly digest
    erased = (message.contact is not None and message.contact.erased_at) or (message.metadata or {}).get("erased")
    if erased:
        return _as_public_page(request, problem(request, "gone"))  # GDPR erasure: the body is gone, and so is the page
    _activate_language(message)
    if (notice := pruned_notice(message)) is not None:  # retention: the row stays, its content went
        page = TemplateResponse(
            request, "public/problem.html", {"title": _("This message's content was deleted"), "text": notice}, status=410
        )
        page["Cache-Control"] = "private, no-store"
        page["X-Robots-Tag"] = "noindex"
        return _as_public_page(request, page)
    if message.is_sensitive:  # its secret is for the inbox it went to, not for whoever has this link
        response = HttpResponse(f"<p>{escape(hidden_notice())}</p>")
    else:
        text, html = final_bodies(message)
        body = html or f'<pre style="white-space:pre-wrap">{escape(text)}</pre>'
        response = HttpResponse(as_web_page(body, title=message.subject, language=translation.get_language() or settings.LANGUAGE_CODE))
    response = _as_email_page(request, response)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response
