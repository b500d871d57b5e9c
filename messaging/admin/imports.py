"""Console contact imports: the upload form, and each import job's page (its progress bar,
the JSON it polls, the error report). Thin: messaging.import_jobs holds the rules."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminFileFieldWidget,
    UnfoldAdminRadioSelectWidget,
    UnfoldAdminSelectWidget,
    UnfoldBooleanWidget,
)

from messaging.admin.base import ReadOnlyAdmin
from messaging.errors import InvalidInput, MailroomError
from messaging.import_jobs import check_import_size, error_report_csv, job_progress, start_import_job
from messaging.models import ImportJob, LegalBasis, Topic
from messaging.policies import can_import_contacts

ERRORS_ON_PAGE = 200
ENCODINGS = [
    ("utf-8-sig", _("UTF-8 (also with a byte order mark, as Excel saves it)")),
    ("cp1252", _("Windows Western European (cp1252)")),
    ("latin-1", _("Latin-1 (ISO-8859-1)")),
]


class ContactImportForm(forms.Form):
    """The file, the topics and legal basis every imported contact gets, and what to do
    with bad rows. The size cap is checked before anything reads the file."""

    import_file = forms.FileField(
        label=_("CSV file"),
        widget=UnfoldAdminFileFieldWidget(attrs={"accept": ".csv,text/csv"}),
        help_text=_(
            "Columns: email, phone, external_id, first_name, last_name, locale, timezone, topics (keys separated by “;”); any other column becomes an attribute."
        ),
    )
    encoding = forms.ChoiceField(label=_("Encoding"), choices=ENCODINGS, initial="utf-8-sig", widget=UnfoldAdminSelectWidget)
    topics = forms.ModelMultipleChoiceField(
        label=_("Subscribe every imported contact to"),
        queryset=Topic.objects.order_by("position", "name"),
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("Contacts who unsubscribed from a topic stay unsubscribed."),
    )
    legal_basis = forms.ChoiceField(
        label=_("Legal basis for these subscriptions"),
        choices=LegalBasis.choices,
        initial=LegalBasis.CONSENT,
        widget=UnfoldAdminSelectWidget,
        help_text=_("Kept on each consent record the import makes."),
    )
    consent_confirmed = forms.BooleanField(
        label=_("These contacts agreed to receive these topics, and I can show when and how"),
        required=False,
        widget=UnfoldBooleanWidget,
    )
    mode = forms.ChoiceField(
        label=_("If some rows are bad"),
        choices=ImportJob.Mode.choices,
        initial=ImportJob.Mode.ALL_OR_NOTHING,
        widget=UnfoldAdminRadioSelectWidget,
        help_text=_(
            "Rows sharing an email, phone or external id are bad rows too. Large files are imported in the background, with a progress bar."
        ),
    )

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        try:
            check_import_size(upload.size)
        except InvalidInput as error:
            raise forms.ValidationError(str(error)) from None
        return upload


def contact_import_view(model_admin, request: HttpRequest) -> HttpResponse:
    """The console's one import path: every file becomes an import job; a small one is
    imported in this request, a large one by a worker; both land on the job's page."""
    if not can_import_contacts(request.user):
        raise PermissionDenied
    form = ContactImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload, data = form.cleaned_data["import_file"], form.cleaned_data["import_file"].read()
        try:
            job = start_import_job(
                actor=request.user,
                file_name=upload.name,
                data=data,
                mode=form.cleaned_data["mode"],
                topics=form.cleaned_data["topics"],
                legal_basis=form.cleaned_data["legal_basis"],
                consent_confirmed=form.cleaned_data["consent_confirmed"],
                encoding=form.cleaned_data["encoding"],
            )
        except InvalidInput as error:
            for field, problems in (error.fields or {}).items():
                form.add_error(field if field in form.fields else None, problems)
            if not error.fields:
                form.add_error(None, str(error))
        except MailroomError as error:
            form.add_error(None, str(error))
        else:
            if job.status == ImportJob.Status.QUEUED:
                messages.success(request, _("The file is being imported in the background. This page shows its progress."))
            elif job.status == ImportJob.Status.DONE:
                messages.success(request, job.message)
            else:
                messages.error(request, job.message)
            return redirect("admin:messaging_importjob_change", job.pk)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Import contacts"),
        "opts": model_admin.model._meta,
        "form": form,
        "jobs_url": "admin:messaging_importjob_changelist",
    }
    return TemplateResponse(request, "console/contact_import.html", context)


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    """Read-only: a job is made by an upload and changed only by its worker. The roles that
    import contacts view the jobs (accounts/roles.py); their errors quote the file's rows."""

    change_form_template = "console/import_job_change_form.html"
    list_display = ("file_name", "status", "progress", "created", "updated", "bad_rows", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    fields = (
        "file_name",
        "status",
        "progress",
        "message",
        "mode",
        "chosen_topics",
        "legal_basis",
        "size",
        "created",
        "updated",
        "subscriptions",
        "bad_rows",
        "errors_per_line",
        "attempts",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description=_("progress"))
    def progress(self, job: ImportJob) -> str:
        return _("%(done)s / %(total)s rows") % {"done": f"{job.rows_done:,}", "total": f"{max(job.rows_total, job.rows_done):,}"}

    @admin.display(description=_("topics"))
    def chosen_topics(self, job: ImportJob) -> str:
        return ", ".join(str(topic) for topic in job.topics.all()) or "—"

    @admin.display(description=_("errors per line"))
    def errors_per_line(self, job: ImportJob) -> str:
        if not job.errors:
            return "—"
        shown = job.errors[:ERRORS_ON_PAGE]
        lines = format_html_join("", "<li>{}</li>", ((_("line %(line)s: %(message)s") % error,) for error in shown))
        more = job.bad_rows - len({error["line"] for error in shown})
        extra = format_html("<li>{}</li>", _("… and %(n)s more bad rows (see the error report)") % {"n": more}) if more > 0 else ""
        return format_html("<ul>{}{}</ul>", lines, extra)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("data")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return can_import_contacts(request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:job_id>/progress.json", view(self.progress_json), name="messaging_importjob_progress"),
            path("<int:job_id>/errors.csv", view(self.error_report), name="messaging_importjob_errors"),
            *super().get_urls(),
        ]

    def _job(self, request: HttpRequest, job_id: int) -> ImportJob:
        if not can_import_contacts(request.user):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=job_id)

    def progress_json(self, request: HttpRequest, job_id: int) -> JsonResponse:
        response = JsonResponse(job_progress(self._job(request, job_id)))
        response["Cache-Control"] = "no-store"
        return response

    def error_report(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._job(request, job_id)
        response = HttpResponse(error_report_csv(job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None) -> HttpResponse:
        job = self.get_object(request, object_id)
        extra = {"import_job": job, "import_progress": job_progress(job) if job else None, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=extra)
