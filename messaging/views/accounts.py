"""Public pages for email verification and password reset: thin, the rules live in
messaging.verification. A GET never changes anything (mail scanners follow links); the
button on the page posts."""

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csp import csp_override
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from messaging.delivery.throttle import client_ip, throttled
from messaging.errors import InvalidInput
from messaging.tokens import TokenError
from messaging.verification import (
    Throttled,
    contact_for_verification,
    queue_password_reset,
    reset_password,
    user_for_reset,
    verify_email,
)
from messaging.views.public import PUBLIC_CSP, problem, refused, token_problem


@csp_override(PUBLIC_CSP)
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("pages", refused=refused)
def verify_email_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        contact = contact_for_verification(token=token)
        translation.activate(contact.locale)
        if request.method == "POST":
            verify_email(token=token)
            return TemplateResponse(request, "public/verified.html", {})
    except TokenError as error:
        return token_problem(request, error)
    return TemplateResponse(request, "public/verify.html", {})


class ResetRequestForm(forms.Form):
    email = forms.CharField(label=_("Your email address"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))


@csp_override(PUBLIC_CSP)
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("pages", refused=refused)
def password_reset_request(request: HttpRequest) -> HttpResponse:
    form = ResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            queue_password_reset(email=form.cleaned_data["email"], ip_address=client_ip(request), language=translation.get_language())
        except Throttled:
            return problem(request, "throttled", retry_after=3600)
        except InvalidInput as error:
            form.add_error("email", error.fields.get("email") or str(error))
        else:  # the same answer whether or not there is an account
            return TemplateResponse(request, "public/reset_sent.html", {})
    return TemplateResponse(request, "public/reset_request.html", {"form": form})


@csp_override(PUBLIC_CSP)
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@throttled("pages", refused=refused)
def password_reset_confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        user = user_for_reset(token=token)
        form = SetPasswordForm(user, request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                reset_password(token=token, new_password=form.cleaned_data["new_password1"])
            except InvalidInput as error:
                form.add_error("new_password2", error.fields.get("password") or str(error))
            else:
                return TemplateResponse(request, "public/reset_done.html", {})
    except TokenError as error:
        return token_problem(request, error)
    return TemplateResponse(request, "public/reset_confirm.html", {"form": form})
