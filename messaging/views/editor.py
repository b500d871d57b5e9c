"""The template editor: Unfold pages mounted on TemplateAdmin. Thin: each view parses the
form and calls the content actions; the live preview compiles without saving."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from messaging.content.merge_tags import merge_tags, sample_context
from messaging.content.rendering import check_source, compile_body, parse_parts, render_parts
from messaging.content.starter import starter_body
from messaging.content.versions import (
    activate_template_version,
    diff_versions,
    restore_template_version,
    save_and_activate_template_version,
    save_template_version,
)
from messaging.delivery.on_demand import send_template_test
from messaging.errors import MailroomError
from messaging.models import Contact, Template, TemplateVersion


class VersionForm(forms.Form):
    subject = forms.CharField(required=False, max_length=998, label=gettext_lazy("Subject"))
    preheader = forms.CharField(required=False, max_length=300, label=gettext_lazy("Preheader"))
    body_format = forms.ChoiceField(choices=TemplateVersion.Format.choices, label=gettext_lazy("Format"))
    body = forms.CharField(required=False, widget=forms.Textarea, label=gettext_lazy("Body"))
    text_body = forms.CharField(required=False, widget=forms.Textarea, label=gettext_lazy("Text version"))
    sms_body = forms.CharField(required=False, widget=forms.Textarea, label=gettext_lazy("SMS / push text"))
    note = forms.CharField(required=False, max_length=300, label=gettext_lazy("Note"))
    sample_contact = forms.IntegerField(required=False)

    def content(self) -> dict[str, str]:
        data = self.cleaned_data
        return {k: data.get(k) or "" for k in ("subject", "preheader", "body_format", "body", "text_body", "sms_body")}


def _sample_contact(form: VersionForm) -> Contact | None:
    pk = form.cleaned_data.get("sample_contact") if form.is_valid() else None
    return Contact.objects.active().filter(pk=pk).first() if pk else None


class EditorBase(UnfoldModelAdminViewMixin, TemplateView):
    permission_required = ("messaging.change_template",)

    def template_object(self) -> Template:
        return get_object_or_404(Template, pk=self.kwargs["pk"])


def activity_notice(template: Template, latest: TemplateVersion | None) -> str:
    """What the editor says when what was saved last is not what sends (empty when it is)."""
    if latest is None:
        return ""
    if not template.is_active:
        return _("This template is deactivated: nothing is sent from it. Activating a version turns it back on.")
    if template.active_version_id is None:
        return _("No version is active: nothing is sent from this template until you activate one.")
    if template.active_version_id != latest.pk:
        return _("The latest version (v%(latest)s) is not the active one: messages still use v%(active)s.") % {
            "latest": latest.number,
            "active": template.active_version.number,
        }
    return ""


class TemplateEditorView(EditorBase):
    """Edit, preview, save (and activate), activate, restore, test-send. GET shows the latest
    version; a template with none starts from the starter MJML layout."""

    title = gettext_lazy("Template editor")
    template_name = "console/template_editor.html"

    def get_context_data(self, **kwargs) -> dict:
        template = self.template_object()
        latest = template.versions.order_by("-number").first()
        form = kwargs.pop("form", None) or VersionForm(
            initial={
                "subject": latest.subject if latest else "",
                "preheader": latest.preheader if latest else "",
                "body_format": latest.body_format if latest else TemplateVersion.Format.MJML,
                "body": latest.body if latest else starter_body(template),
                "text_body": latest.text_body if latest else "",
                "sms_body": latest.sms_body if latest else "",
            }
        )
        context = super().get_context_data(**kwargs)
        context.update(
            template=template,
            form=form,
            versions=template.versions.select_related("author").order_by("-number")[:50],
            latest=latest,
            activity_notice=activity_notice(template, latest),
            siblings=Template.objects.filter(key=template.key).exclude(pk=template.pk).order_by("locale"),
            merge_tags=merge_tags(),
            sample_contacts=Contact.objects.active().exclude(email=None).order_by("id")[:20],
            preview_url=reverse("admin:messaging_template_preview", args=[template.pk]),
            test_send_url=reverse("admin:messaging_template_test_send", args=[template.pk]),
            diff_url=reverse("admin:messaging_template_diff", args=[template.pk]),
            default_test_address=self.request.user.email,
        )
        if form.is_bound and form.is_valid():  # after a refused save, preview what is in the editor
            context["preview"] = preview_of(form.content(), contact=_sample_contact(form))
        elif latest:
            context["preview"] = preview_of(latest_content(latest), contact=None)
        elif form.initial.get("body"):  # the starter layout, previewed before anything is saved
            context["preview"] = preview_of({**dict.fromkeys(LATEST_FIELDS, ""), **form.initial}, contact=None)
        return context

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        template = self.template_object()
        action = request.POST.get("action", "save")
        try:
            if action == "activate":
                version = get_object_or_404(TemplateVersion, pk=request.POST.get("version"), template=template)
                activate_template_version(actor=request.user, version=version)
                messages.success(request, _("Version %(n)s is now active.") % {"n": version.number})
            elif action == "restore":
                version = get_object_or_404(TemplateVersion, pk=request.POST.get("version"), template=template)
                restored = restore_template_version(actor=request.user, version=version)
                messages.success(
                    request, _("Version %(old)s restored as version %(new)s.") % {"old": version.number, "new": restored.number}
                )
            else:
                form = VersionForm(request.POST)
                if not form.is_valid():
                    return self.render_to_response(self.get_context_data(form=form))
                save = save_and_activate_template_version if action == "save_activate" else save_template_version
                version = save(actor=request.user, template=template, note=form.cleaned_data["note"], **form.content())
                self.say_saved(request, version)
        except MailroomError as error:
            messages.error(request, str(error))
            if action in ("save", "save_activate"):
                form = VersionForm(request.POST)
                form.is_valid()
                return self.render_to_response(self.get_context_data(form=form))
        return redirect("admin:messaging_template_editor", pk=template.pk)

    @staticmethod
    def say_saved(request: HttpRequest, version: TemplateVersion) -> None:
        """The page it redirects to says, above the editor, when this version is not the active one."""
        template = Template.objects.get(pk=version.template_id)
        if template.is_active and template.active_version_id == version.pk:
            messages.success(request, _("Saved as version %(n)s. It is the active version.") % {"n": version.number})
        else:
            messages.success(request, _("Saved as version %(n)s.") % {"n": version.number})


LATEST_FIELDS = ("subject", "preheader", "body_format", "body", "text_body", "sms_body")


def latest_content(version: TemplateVersion) -> dict[str, str]:
    return {f: getattr(version, f) for f in LATEST_FIELDS}


def preview_of(content: dict[str, str], *, contact: Contact | None) -> dict:
    """Compile and render without saving; errors and missing variables become messages."""
    try:
        for part in ("subject", "preheader", "body", "text_body", "sms_body"):
            check_source(content[part], part=part)
        html, text = compile_body(body_format=content["body_format"], body=content["body"], text_body=content["text_body"])
        parsed = parse_parts(subject=content["subject"], html=html, text=text, sms=content["sms_body"])
        rendered = render_parts(parsed, sample_context(contact))
    except MailroomError as error:
        return {"error": str(error)}
    return {"rendered": rendered, "missing": rendered.missing}


class TemplatePreviewView(EditorBase):
    """HTMX: the preview pane for what is in the editor now."""

    title = gettext_lazy("Preview")

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.template_object()
        form = VersionForm(request.POST)
        if not form.is_valid():
            return TemplateResponse(request, "console/template_editor.html#preview", {"preview": {"error": form.errors.as_text()}})
        preview = preview_of(form.content(), contact=_sample_contact(form))
        return TemplateResponse(request, "console/template_editor.html#preview", {"preview": preview})


MAX_TEST_ADDRESSES = 10


class TemplateTestSendView(EditorBase):
    """HTMX: send the latest saved version to an address, now."""

    title = gettext_lazy("Test send")

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        template = self.template_object()
        version = template.versions.order_by("-number").first()
        context: dict = {}
        if version is None:
            context["error"] = _("Save a version first.")
        else:
            # One address, or a small seed list separated by commas or new lines.
            addresses = [a.strip() for a in request.POST.get("to", "").replace("\n", ",").split(",") if a.strip()][:MAX_TEST_ADDRESSES]
            try:
                context["sent"] = [send_template_test(actor=request.user, version=version, to=address) for address in addresses or [""]]
                context["sandbox_url"] = reverse("admin:messaging_sandboxmessage_changelist")
            except MailroomError as error:
                context["error"] = str(error)
        return TemplateResponse(request, "console/template_editor.html#test-result", context)


class TemplateDiffView(EditorBase):
    """Side-by-side, line-level diff of two versions (source or rendered HTML)."""

    title = gettext_lazy("Compare versions")
    permission_required = ("messaging.view_template",)
    template_name = "console/template_diff.html"
    FIELDS = {
        "body": gettext_lazy("Source"),
        "rendered": gettext_lazy("Rendered HTML"),
        "text_body": gettext_lazy("Text version"),
        "subject": gettext_lazy("Subject"),
        "sms_body": gettext_lazy("SMS"),
    }

    def get_context_data(self, **kwargs) -> dict:
        template = self.template_object()
        versions = {v.number: v for v in template.versions.all()}
        context = super().get_context_data(**kwargs)
        numbers = sorted(versions)
        try:
            old_n = int(self.request.GET.get("old", numbers[-2] if len(numbers) > 1 else 0))
            new_n = int(self.request.GET.get("new", numbers[-1] if numbers else 0))
        except ValueError:
            old_n = new_n = 0
        field = self.request.GET.get("field", "body")
        context.update(template=template, numbers=numbers, old_n=old_n, new_n=new_n, field=field, fields=self.FIELDS)
        if old_n in versions and new_n in versions and field in self.FIELDS:
            context["table"] = diff_versions(old=versions[old_n], new=versions[new_n], field=field)
        else:
            context["problem"] = _("Pick two existing versions to compare.")
        return context
