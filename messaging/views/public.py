"""Public endpoints for recipients: tracked clicks, one-click unsubscribe, the preference
center and view-in-browser. No login: every link carries a signed, purpose-salted,
expiring token, and no address or id appears in clear."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone, translation
from django.utils.csp import CSP
from django.utils.html import escape
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from messaging.consent import ConsentContext
from messaging.models import Channel, ConsentRecord, DeliveryEvent, OutboxMessage, Topic, TrackedLink
from messaging.preferences import consent_context, current_choices, unsubscribe_from_message, update_preferences
from messaging.tracking import fill_message_marker, message_from_public_token, message_from_token


def click(request: HttpRequest, link_id: int, token: str) -> HttpResponseRedirect:
    link = get_object_or_404(TrackedLink, pk=link_id)  # only stored URLs can be targets
    message_pk = message_from_token(token)
    if message_pk is None:
        raise Http404
    if OutboxMessage.objects.filter(pk=message_pk).exists():
        DeliveryEvent.objects.create(
            message_id=message_pk, kind=DeliveryEvent.Kind.CLICKED, payload={"link": link.pk}, occurred_at=timezone.now()
        )
    return HttpResponseRedirect(link.url)


# --- unsubscribe, preferences, view in browser ----------------------------------------------
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


def _message_or_error(request: HttpRequest, token: str, marker: str) -> OutboxMessage | HttpResponse:
    """A tampered or expired token gets a plain page that says nothing about anyone."""
    pk = message_from_public_token(token, marker)
    message = OutboxMessage.objects.select_related("contact", "topic").filter(pk=pk).first() if pk else None
    if message is None:
        return TemplateResponse(request, "public/invalid_link.html", status=400)
    return message


def _activate_language(message: OutboxMessage) -> None:
    if message.contact is not None:
        translation.activate(message.contact.locale)


@csp_override(PUBLIC_CSP)
@csrf_exempt  # authenticated by the signed token; RFC 8058 clients post without a CSRF token
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    message = _message_or_error(request, token, "__MAILROOM_UNSUBSCRIBE__")
    if isinstance(message, HttpResponse):
        return message
    _activate_language(message)
    context = {"message": message, "topic": message.topic, "token": token}
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        everything = request.POST.get("scope") == "all"
        unsubscribe_from_message(message=message, everything=everything, context=_unsubscribe_context(request, one_click))
        if one_click:
            return HttpResponse(status=200)
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


@csp_override(PUBLIC_CSP)
@csrf_protect
def preferences_page(request: HttpRequest, token: str) -> HttpResponse:
    message = _message_or_error(request, token, "__MAILROOM_PREFERENCES__")
    if isinstance(message, HttpResponse):
        return message
    contact = message.contact
    if contact is None or contact.erased_at:
        return TemplateResponse(request, "public/invalid_link.html", status=400)
    saved = False
    if request.method == "POST":
        wanted = set()
        for value in request.POST.getlist("choice"):
            topic_id, _sep, channel = value.partition(":")
            if topic_id.isdigit():
                wanted.add((int(topic_id), channel))
        locale = request.POST.get("locale") if request.POST.get("locale") in dict(settings.LANGUAGES) else None
        if request.POST.get("everything"):
            wanted = set()
        update_preferences(contact=contact, wanted=wanted, locale=locale, context=consent_context(request))
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
    return TemplateResponse(
        request,
        "public/preferences.html",
        {"rows": rows, "saved": saved, "languages": settings.LANGUAGES, "contact_locale": contact.locale},
    )


@csp_override(
    {"default-src": [CSP.NONE], "style-src": [CSP.UNSAFE_INLINE], "img-src": [CSP.SELF, "data:", "https:"], "frame-ancestors": [CSP.NONE]}
)
def view_in_browser(request: HttpRequest, token: str) -> HttpResponse:
    """The email as sent, with no script allowed to run."""
    message = _message_or_error(request, token, "__MAILROOM_VIEW__")
    if isinstance(message, HttpResponse):
        return message
    html = message.body_html or f"<pre>{escape(message.body_text)}</pre>"
    return HttpResponse(fill_message_marker(html, message.pk))
