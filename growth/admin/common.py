"""What the growth admin pages share: reason dialogs and the answer after an action."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminTextInputWidget

from messaging.errors import MailroomError


class ReasonDialogForm(BaseDialogForm):
    reason = forms.CharField(label=_("Reason"), max_length=300, widget=UnfoldAdminTextInputWidget, help_text=_("Kept in the audit trail."))
    confirm = forms.BooleanField(label=_("I confirm this change"), required=True)


class AdjustPointsForm(ReasonDialogForm):
    points = forms.IntegerField(
        label=_("Points"),
        widget=UnfoldAdminIntegerFieldWidget,
        help_text=_("Positive to add, negative to remove."),
        min_value=-10_000_000,
        max_value=10_000_000,
    )
    field_order = ["points", "reason", "confirm"]


def back_to(request: HttpRequest, url: str) -> HttpResponse:
    """Dialogs post through HTMX: tell it where to go; a plain POST gets a redirect."""
    response = HttpResponse(status=200 if request.headers.get("HX-Request") else 302)
    response["HX-Redirect"] = url
    if response.status_code == 302:
        response["Location"] = url
    return response


def run_action(request: HttpRequest, call, *, success: str, url: str) -> HttpResponse:
    try:
        call()
    except MailroomError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, success)
    return back_to(request, url)


def summary_link(contact) -> str:
    if contact is None:
        return "-"
    return format_html(
        '<a class="text-primary-600 underline" href="{}">{}</a>', reverse("admin:growth_contact", args=[contact.pk]), contact
    )
