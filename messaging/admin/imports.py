"""Console contact imports: the upload form (mode, size cap) and the import jobs' pages."""

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.contrib.import_export.forms import ImportForm
from unfold.widgets import UnfoldAdminSelectWidget

from messaging.admin.readonly import ReadOnlyAdmin
from messaging.errors import InvalidInput
from messaging.import_jobs import check_import_size
from messaging.models import ImportJob


class ContactImportForm(ImportForm):
    """django-import-export's form plus the all-or-nothing / good-rows choice, and the size
    cap checked before anything reads the file."""

    mode = forms.ChoiceField(
        label=_("If some rows are bad"),
        choices=ImportJob.Mode.choices,
        initial=ImportJob.Mode.ALL_OR_NOTHING,
        required=False,  # all or nothing unless asked
        widget=UnfoldAdminSelectWidget,
        help_text=_("Large files are imported in the background: you will see their progress under Audience › Import jobs."),
    )

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or ImportJob.Mode.ALL_OR_NOTHING

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        try:
            check_import_size(upload.size)
        except InvalidInput as error:
            raise forms.ValidationError(str(error)) from None
        return upload


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    """Read-only: a job is made by an upload and changed only by its worker. The roles that
    import contacts view the jobs (config/roles.py); their errors quote the file's rows."""

    list_display = ("file_name", "status", "progress", "created", "updated", "bad_rows", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    fields = (
        "file_name",
        "status",
        "progress",
        "message",
        "mode",
        "size",
        "created",
        "updated",
        "subscriptions",
        "bad_rows",
        "errors_per_line",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description=_("progress"))
    def progress(self, job: ImportJob) -> str:
        return _("%(done)s / %(total)s rows") % {"done": f"{job.rows_done:,}", "total": f"{max(job.rows_total, job.rows_done):,}"}

    @admin.display(description=_("errors per line"))
    def errors_per_line(self, job: ImportJob) -> str:
        if not job.errors:
            return "—"
        lines = format_html_join("", "<li>{}</li>", ((_("line %(line)s: %(message)s") % error,) for error in job.errors))
        more = job.bad_rows - len({error["line"] for error in job.errors})
        extra = format_html("<li>{}</li>", _("… and %(n)s more bad rows") % {"n": more}) if more > 0 else ""
        return format_html("<ul>{}{}</ul>", lines, extra)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("data")

