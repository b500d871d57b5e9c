"""The hosted sign-up page /f/<slug>/ (also what embedded forms post to) and the
confirmation link. Thin: the rules live in messaging.signup.actions.

The form endpoint is csrf_exempt on purpose: the embedded snippet posts from other sites.
A honeypot, throttles per IP and per address and double opt-in stand in for the token.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import translation
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from messaging.delivery.throttle import client_address, over_limit, throttled
from messaging.errors import InvalidInput
from messaging.models import SignupForm
from messaging.signup.actions import HONEYPOT, SignupRequest, SignupThrottled, confirm_signup, count_view, pending_for, submit_signup
from messaging.tokens import TokenError
from messaging.views.public import PUBLIC_CSP, refused, token_problem


def _activate_visitor_language(request: HttpRequest) -> str:
    """?lang= first, else what LocaleMiddleware read from Accept-Language."""
    wanted = request.GET.get("lang", "")
    if wanted in dict(settings.LANGUAGES):
        translation.activate(wanted)
    return translation.get_language() or settings.LANGUAGE_CODE


def _thank_you(request: HttpRequest, form: SignupForm) -> HttpResponse:
    if form.thank_you_url:
        return HttpResponseRedirect(form.thank_you_url)
    response = TemplateResponse(request, "public/signup_thanks.html", {"form": form})
    response["Cache-Control"] = "no-store"
    return response


def _context(form: SignupForm, data: dict, errors: dict, language: str) -> dict:
    return {
        "form": form,
        "topics": list(form.topics.all()),
        "data": data,
        "picked": data.get("topics") or [],
        "errors": errors,
        "honeypot": HONEYPOT,
        "languages": settings.LANGUAGES,
        "language": language,
    }


@csp_override(PUBLIC_CSP)
@csrf_exempt  # the embedded form posts cross-site; honeypot + throttles + double opt-in instead
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("pages", refused=refused)
def signup_page(request: HttpRequest, slug: str) -> HttpResponse:
    form = get_object_or_404(SignupForm, slug=slug, is_active=True)
    language = _activate_visitor_language(request)
    if request.method != "POST":
        if request.method == "GET":
            count_view(form=form)
        return TemplateResponse(request, "public/signup.html", _context(form, {}, {}, language))
    if request.POST.get(HONEYPOT):
        return _thank_you(request, form)  # a robot: pretend, store nothing
    if over_limit(request, "signup-ip"):
        return refused(request, settings.MAILROOM_RATE_LIMITS["signup-ip"][1])
    data = {
        "email": request.POST.get("email", "")[:254],
        "first_name": request.POST.get("first_name", "")[:150],
        "language": request.POST.get("language", "")[:10],
        "phone": request.POST.get("phone", "")[:40],
        "topics": [key[:64] for key in request.POST.getlist("topics")[:50]],
    }
    try:
        submit_signup(
            form=form,
            data=SignupRequest(
                **data,
                ip_address=client_address(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                page_language=language,
            ),
        )
    except SignupThrottled:
        return refused(request, settings.MAILROOM_RATE_LIMITS["signup-address"][1])
    except InvalidInput as error:
        return TemplateResponse(request, "public/signup.html", _context(form, data, error.fields, language), status=400)
    return _thank_you(request, form)


@csp_override(PUBLIC_CSP)
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("pages", refused=refused)
def confirm_page(request: HttpRequest, token: str) -> HttpResponse:
    """A GET shows a button (mail scanners follow links); the button posts and confirms."""
    try:
        pending = pending_for(token=token)
        if pending.language:
            translation.activate(pending.language)
        if request.method == "POST":
            confirm_signup(token=token, ip_address=client_address(request))
            if pending.form.confirmed_url:
                return HttpResponseRedirect(pending.form.confirmed_url)
            return TemplateResponse(request, "public/signup_confirmed.html", {"form": pending.form})
    except TokenError as error:
        if error.reason == "expired":
            return TemplateResponse(request, "public/signup_expired.html", {}, status=410)
        return token_problem(request, error)
    response = TemplateResponse(request, "public/signup_confirm.html", {"form": pending.form})
    response["Cache-Control"] = "no-store"
    return response
