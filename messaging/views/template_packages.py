"""The console's template package import: upload a zip, see what it would create or change
(a dry run through the real checks), confirm. The confirmation posts the same zip back
(base64 in the form) and it is checked again, whole, before anything is written."""

import base64
import binascii

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldBooleanWidget

from messaging.content.packages import MAX_UPLOAD_BYTES, import_package
from messaging.errors import MailroomError
from messaging.policies import can_import_templates


class PackageUploadForm(forms.Form):
    package = forms.FileField(
        label=gettext_lazy("Template package (zip)"),
        widget=UnfoldAdminFileFieldWidget(attrs={"accept": ".zip,application/zip"}),
        help_text=gettext_lazy("One folder per template key: manifest.json and each language's files, as exported."),
    )
    activate = forms.BooleanField(
        label=gettext_lazy("Activate the new versions of existing templates"),
        required=False,
        widget=UnfoldBooleanWidget,
        help_text=gettext_lazy("New templates are always active. Unticked, existing ones get draft versions to review in the editor."),
    )

    def clean_package(self):
        upload = self.cleaned_data["package"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The package is larger than %(max)s MB.") % {"max": MAX_UPLOAD_BYTES / 2**20})
        return upload


class PackageConfirmForm(forms.Form):
    data = forms.CharField(widget=forms.HiddenInput, max_length=MAX_UPLOAD_BYTES * 4 // 3 + 8)
    name = forms.CharField(widget=forms.HiddenInput, max_length=200)
    activate = forms.BooleanField(widget=forms.HiddenInput, required=False)

    def clean_data(self) -> bytes:
        try:
            return base64.b64decode(self.cleaned_data["data"], validate=True)
        except (binascii.Error, ValueError):
            raise forms.ValidationError(_("The package was damaged on the way back: upload it again.")) from None


def template_import_view(model_admin, request: HttpRequest) -> HttpResponse:
    if not can_import_templates(request.user):
        raise PermissionDenied
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Import templates"),
        "opts": model_admin.model._meta,
    }
    form = PackageUploadForm()
    if request.method == "POST" and "confirm" in request.POST:
        confirm = PackageConfirmForm(request.POST)
        if confirm.is_valid():
            data = confirm.cleaned_data
            try:
                report = import_package(actor=request.user, data=data["data"], name=data["name"], activate=data["activate"])
            except MailroomError as error:
                context["error"] = str(error)
            else:
                messages.success(
                    request,
                    _("Imported: %(created)s template(s) created, %(versions)s new version(s), %(unchanged)s unchanged.")
                    % {"created": report.count("create"), "versions": report.count("new version"), "unchanged": report.count("unchanged")},
                )
                return redirect("admin:messaging_template_changelist")
        else:
            context["error"] = " ".join(" ".join(errors) for errors in confirm.errors.values())
    elif request.method == "POST":
        form = PackageUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload, activate = form.cleaned_data["package"], form.cleaned_data["activate"]
            data = upload.read()
            try:
                report = import_package(actor=request.user, data=data, name=upload.name, dry_run=True, activate=activate)
            except MailroomError as error:
                form.add_error("package", str(error))
            else:
                context["report"] = report
                context["confirm_form"] = PackageConfirmForm(
                    initial={"data": base64.b64encode(data).decode(), "name": upload.name, "activate": activate}
                )
    context["form"] = form
    return TemplateResponse(request, "console/template_import.html", context)
