"""The public referral landing page: a friend opens a referral link and signs up.

Ours alone, so the strictest policy: no script at all. A device cookie (random, HttpOnly)
feeds the shared-device fraud rule; the IP address feeds the shared-IP rule.
"""

import secrets

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from growth.models import Referral, ReferralCode
from growth.referrals import describe_reward, normalise_referral_code, program_is_open, sign_up_with_referral
from messaging.delivery.throttle import client_address, over_limit, throttled
from messaging.errors import MailroomError
from messaging.views.public import PUBLIC_CSP, refused

DEVICE_COOKIE = "mr_device"
DEVICE_COOKIE_AGE = 365 * 24 * 3600


class FriendSignupForm(forms.Form):
    email = forms.EmailField(label=_("Your email address"), max_length=254)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)


def _device_id(request: HttpRequest) -> str:
    value = request.COOKIES.get(DEVICE_COOKIE, "")
    return value if value.isascii() and 16 <= len(value) <= 64 else ""


def _with_device_cookie(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if not _device_id(request):
        response.set_cookie(DEVICE_COOKIE, secrets.token_urlsafe(24), max_age=DEVICE_COOKIE_AGE, httponly=True, samesite="Lax")
    return response


@csp_override(PUBLIC_CSP)
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("pages", refused=refused)
def referral_landing(request: HttpRequest, code: str) -> HttpResponse:
    """Anonymous sign-ups are throttled per client IP ("referral-signup") on top of the
    page limit; the action creates nothing for a referral it rejects."""
    if request.method == "POST" and over_limit(request, "referral-signup"):
        return refused(request, settings.MAILROOM_RATE_LIMITS["referral-signup"][1])
    referral_code = ReferralCode.objects.select_related("program", "contact").filter(code=normalise_referral_code(code)).first()
    if referral_code is None or not program_is_open(referral_code.program):
        return TemplateResponse(request, "public/referral_invalid.html", status=404)
    program = referral_code.program
    context = {
        "code": referral_code.code,
        "referrer_name": referral_code.contact.first_name,
        "friend_reward": describe_reward(program.friend_reward_kind, program.friend_reward_value, program.currency),
        "minimum_purchase": program.minimum_purchase,
        "currency": program.currency,
    }
    form = FriendSignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            referral = sign_up_with_referral(
                code=referral_code.code,
                email=form.cleaned_data["email"],
                first_name=form.cleaned_data["first_name"],
                locale=(get_language() or "en")[:2],
                ip_address=client_address(request),
                device_id=_device_id(request),
            )
        except MailroomError as error:
            form.add_error(None, str(error))
        else:
            rewarded = referral.status == Referral.Status.PENDING
            return TemplateResponse(request, "public/referral_welcome.html", context | {"rewarded": rewarded})
    status = 400 if request.method == "POST" else 200
    return _with_device_cookie(request, TemplateResponse(request, "public/referral_landing.html", context | {"form": form}, status=status))
