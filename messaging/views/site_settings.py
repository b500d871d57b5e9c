"""Settings → Sending: who sends, the postal address, links' base address, and email
delivery (sandbox, SMTP or an ESP) with a test send that shows the server's answer.

Thin: each form parses input and calls one action (messaging.site.update_site_settings,
messaging.email_setup.configure_email_delivery / send_delivery_test); an action's
InvalidInput lands on the fields it names. Admin only (messaging.policies.can_manage_settings)."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.views import UnfoldSiteViewMixin
from unfold.widgets import (
    UnfoldAdminEmailInputWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminPasswordWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from messaging import policies, site
from messaging.email_setup import ESPS, Delivery, Security, configure_email_delivery, current_email_setup, send_delivery_test
from messaging.errors import InvalidInput
from messaging.models import SiteSettings


def _text(label, *, help_text="", max_length=254, widget=UnfoldAdminTextInputWidget):
    return forms.CharField(label=label, required=False, max_length=max_length, help_text=help_text, widget=widget)


def _credential(label) -> forms.CharField:
    """A password or API key: typed in, stored encrypted, never shown again (the form's
    __init__ says whether one is stored)."""
    return forms.CharField(
        label=label,
        required=False,
        max_length=500,
        strip=False,
        widget=UnfoldAdminPasswordWidget(attrs={"autocomplete": "new-password"}),
    )


def _credential_secret() -> forms.CharField:
    """The other way to give a credential: the name of a secret in the environment."""
    return _text(
        gettext_lazy("…or the name of a secret holding it"),
        max_length=64,
        help_text=gettext_lazy("NAME for the environment variable MAILROOM_SECRET_NAME."),
    )


class SendingForm(forms.Form):
    sender_name = _text(gettext_lazy("Sender name"), max_length=100, help_text=gettext_lazy("Shown as the sender of every email."))
    from_email = _text(
        gettext_lazy("From address"), help_text=gettext_lazy("The address every email comes from, unless a campaign names its own.")
    )
    reply_to = _text(gettext_lazy("Reply-to address"), help_text=gettext_lazy("Where replies go; empty: to the from address."))
    postal_address = _text(
        gettext_lazy("Postal address"),
        max_length=500,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Printed at the foot of every marketing email, as the law requires: no marketing email goes out without it."
        ),
    )
    site_name = _text(gettext_lazy("Site name"), max_length=100, help_text=gettext_lazy("{{ site_name }} in templates."))
    site_url = _text(
        gettext_lazy("Site URL"), max_length=200, help_text=gettext_lazy("{{ site_url }} in templates; empty: Mailroom's public address.")
    )
    base_url = _text(
        gettext_lazy("Mailroom's public address"),
        max_length=200,
        help_text=gettext_lazy("The start of every link in an email (unsubscribe, tracking, verification): https:// in production."),
    )
    default_provider = forms.ChoiceField(
        label=gettext_lazy("Default provider"),
        choices=SiteSettings.DefaultProvider.choices,
        widget=UnfoldAdminSelectWidget,
        help_text=gettext_lazy("For a channel (email, SMS…) with no provider set up."),
    )

    def __init__(self, *args, current: site.Site, saved: SiteSettings, **kwargs):
        initial = {name: getattr(saved, name) for name in site.FIELDS}
        initial["default_provider"] = saved.default_provider or site.DEFAULTS["default_provider"]
        super().__init__(*args, initial=initial, **kwargs)
        self.overridden = current.overridden
        for name, default in site.DEFAULTS.items():  # what an empty field means
            if default and name != "default_provider":
                self.fields[name].widget.attrs["placeholder"] = default
        self.fields["site_url"].widget.attrs["placeholder"] = current.base_url
        for name, variable in current.overridden.items():
            field = self.fields[name]
            field.disabled = True  # the submitted value is ignored: the environment's is shown
            field.initial = getattr(current, name)
            field.help_text = _("Set by the environment variable %(variable)s: change it there (it overrides this page).") % {
                "variable": variable
            }

    def values(self) -> dict[str, str]:
        return {name: value for name, value in self.cleaned_data.items() if name not in self.overridden}


class DeliveryForm(forms.Form):
    mode = forms.ChoiceField(label=gettext_lazy("Deliver email through"), choices=Delivery.choices, widget=UnfoldAdminSelectWidget)
    host = _text(gettext_lazy("SMTP host"), max_length=253)
    port = forms.IntegerField(
        label=gettext_lazy("Port"),
        required=False,
        min_value=1,
        max_value=65535,
        widget=UnfoldAdminIntegerFieldWidget,
        help_text=gettext_lazy("Empty: 587 with STARTTLS, 465 with TLS, 25 without."),
    )
    security = forms.ChoiceField(label=gettext_lazy("Encryption"), choices=Security.choices, widget=UnfoldAdminSelectWidget)
    username = _text(gettext_lazy("User name"))
    password = _credential(gettext_lazy("Password"))
    password_secret = _credential_secret()
    esp = forms.ChoiceField(
        label=gettext_lazy("Email service"),
        required=False,
        choices=[("", "—"), *[(key, name) for key, (name, _backend, _option) in ESPS.items()]],
        widget=UnfoldAdminSelectWidget,
    )
    api_key = _credential(gettext_lazy("API key"))
    api_key_secret = _credential_secret()

    def __init__(self, *args, setup, **kwargs):
        initial = {
            "mode": setup.mode,
            "host": setup.host,
            "port": setup.port,
            "security": setup.security,
            "username": setup.username,
            "password_secret": setup.password_secret,
            "esp": setup.esp,
            "api_key_secret": setup.api_key_secret,
        }
        super().__init__(*args, initial=initial, **kwargs)
        for name, stored in (("password", setup.password_stored), ("api_key", setup.api_key_stored)):
            self.fields[name].help_text = (
                _("Stored encrypted, never shown: leave empty to keep it.") if stored else _("Stored encrypted; never shown again.")
            )


class TestSendForm(forms.Form):
    to = forms.CharField(label=gettext_lazy("Send a test to"), max_length=254, widget=UnfoldAdminEmailInputWidget)


def _attach(form: forms.Form, error: InvalidInput) -> None:
    """An action's error on the fields it names (the form's own names), else on the form."""
    placed = False
    for name, problems in error.fields.items():
        if name in form.fields:
            for problem in problems:
                form.add_error(name, problem)
            placed = True
    if not placed:
        form.add_error(None, str(error))


class SettingsView(UnfoldSiteViewMixin):
    title = gettext_lazy("Sending settings")

    def has_permission(self) -> bool:
        return policies.can_manage_settings(self.request.user)

    def _forms(self, request: HttpRequest, section: str | None) -> dict:
        saved = site.load_settings()
        data = request.POST if section else None
        return {
            "sending_form": SendingForm(data if section == "sending" else None, current=site.current(), saved=saved),
            "delivery_form": DeliveryForm(data if section == "delivery" else None, setup=current_email_setup()),
            "test_form": TestSendForm(data if section == "test" else None, initial={"to": request.user.email}),
        }

    def _render(self, request: HttpRequest, forms_: dict, status: int = 200, **extra) -> TemplateResponse:
        current = site.current()
        context = self.get_context_data(
            **forms_,
            current=current,
            setup=current_email_setup(),
            environment=sorted(set(current.overridden.values())),
            **extra,
        )
        response = TemplateResponse(request, "console/site_settings.html", context, status=status)
        response["Cache-Control"] = "no-store"
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, self._forms(request, None))

    def post(self, request: HttpRequest) -> HttpResponse:
        section = request.POST.get("section", "")
        if section not in ("sending", "delivery", "test"):
            return HttpResponse(status=400)
        forms_ = self._forms(request, section)
        form = forms_[f"{section}_form"]
        if form.is_valid():
            try:
                if section == "sending":
                    site.update_site_settings(actor=request.user, values=form.values())
                    messages.success(request, _("Sending settings saved."))
                elif section == "delivery":
                    configure_email_delivery(actor=request.user, **form.cleaned_data)
                    messages.success(request, _("Email delivery saved."))
                else:
                    answer = send_delivery_test(actor=request.user, to=form.cleaned_data["to"])
                    return self._render(request, forms_, answer=answer)
            except InvalidInput as error:
                _attach(form, error)
            else:
                return redirect(reverse("admin:site_settings"))
        return self._render(request, forms_, status=400)
