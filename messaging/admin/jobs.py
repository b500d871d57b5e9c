"""Settings area of the console: django-q2's schedules, finished and queued tasks.

django-q2's own admin lets whoever may change a schedule type any dotted path (a
schedule with `subprocess.getoutput` ran shell commands as the server's user) and shows
task arguments and results (which may hold secrets) to anyone who may view them. These
pages replace it: a schedule's function is picked from the jobs Mailroom registers
(messaging.schedules), schedule edits are audited, and arguments, results and
resubmitting are for those who may manage jobs (Admin)."""

import django_q.admin  # noqa: F401  (registers django-q2's pages first, so they can be replaced)
from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_q.conf import Conf
from django_q.models import Failure, OrmQ, Schedule, Success, Task
from django_q.tasks import async_task
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminSelectWidget

from messaging import policies
from messaging.admin.base import AuditedModelAdmin
from messaging.audit import record_audit
from messaging.schedules import schedule_functions


def job_choices() -> list[tuple[str, str]]:
    return [("", "---------"), *((func, f"{name} ({func})") for func, name in schedule_functions().items())]


class ScheduleForm(forms.ModelForm):
    func = forms.ChoiceField(
        label=_("Job"),
        choices=job_choices,
        widget=UnfoldAdminSelectWidget,
        help_text=_("One of the jobs Mailroom registers."),
    )

    class Meta:
        model = Schedule
        fields = ("name", "func", "schedule_type", "minutes", "cron", "repeats", "next_run")


@admin.display(description=_("last run"))
def last_run(obj: Schedule) -> str | None:
    if obj.task_name is None:
        return None
    view = "admin:django_q_success_change" if obj.task_success else "admin:django_q_failure_change"
    return format_html('<a href="{}">{}</a>', reverse(view, args=(obj.task_id,)), obj.task_name)


@admin.display(description=_("success"), boolean=True)
def last_run_succeeded(obj: Schedule) -> bool | None:
    return obj.task_success


class ScheduleAdmin(AuditedModelAdmin):
    form = ScheduleForm
    fields = ScheduleForm.Meta.fields
    list_display = ("name", "func", "schedule_type", "repeats", "next_run", last_run, last_run_succeeded)
    list_filter = ("schedule_type",)
    search_fields = ("name", "func")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        last = Task.objects.filter(id=OuterRef("task"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                task_id=Subquery(last.values("id")),
                task_name=Subquery(last.values("name")),
                task_success=Subquery(last.values("success")),
            )
        )

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        # Viewers (Ops) see the list; a schedule's own page is the edit form, Admin's only.
        if obj is not None:
            return self.has_change_permission(request, obj)
        return super().has_view_permission(request, obj)

    def get_list_display_links(self, request: HttpRequest, list_display):
        return super().get_list_display_links(request, list_display) if self.has_change_permission(request) else None


class TaskAdmin(ModelAdmin):
    """Finished tasks, read-only. Arguments and results only for who may manage jobs."""

    list_display = ("name", "func", "group", "started", "stopped", "time_taken")
    list_filter = ("group",)
    search_fields = ("name", "func", "group")
    summary_fields = ("name", "func", "group", "cluster", "started", "stopped", "time_taken", "attempt_count")
    payload_fields = ("args", "kwargs", "result")
    actions = ["resubmit_task"]

    def get_fields(self, request: HttpRequest, obj=None):
        return (*self.summary_fields, *(self.payload_fields if policies.can_read_job_payloads(request.user) else ()))

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=_("time taken"))
    def time_taken(self, obj: Task) -> float:
        return obj.time_taken()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_resubmit_permission(self, request: HttpRequest) -> bool:
        return policies.can_manage_jobs(request.user)

    @admin.action(description=_("Resubmit selected tasks to queue"), permissions=["resubmit"])
    def resubmit_task(self, request: HttpRequest, queryset: QuerySet) -> None:
        # django-q2's pre_enqueue guard (messaging.schedules.guard_enqueue) refuses
        # anything Mailroom does not register, whatever the row says.
        count = 0
        for task in queryset:
            async_task(task.func, *(task.args or ()), group=task.group, **(task.kwargs or {}))
            record_audit(actor=request.user, verb="resubmitted", target=task, changes={"func": {"before": None, "after": task.func}})
            count += 1
        messages.success(request, ngettext("%d task resubmitted.", "%d tasks resubmitted.", count) % count)


class FailureAdmin(TaskAdmin):
    # Ops may clear failed jobs; a refused job (an unregistered function) is the trace of an
    # attempt to run code, so deleting one is audited.
    def delete_model(self, request: HttpRequest, obj: Failure) -> None:
        with transaction.atomic():
            record_audit(actor=request.user, verb="deleted", target=obj, changes={"func": {"before": obj.func, "after": None}})
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for task in queryset:
                record_audit(actor=request.user, verb="deleted", target=task, changes={"func": {"before": task.func, "after": None}})
            super().delete_queryset(request, queryset)

    def get_list_display(self, request: HttpRequest):
        if policies.can_read_job_payloads(request.user):
            return (*self.list_display, "short_result")
        return self.list_display

    @admin.display(description=_("short result"))
    def short_result(self, obj: Failure) -> str:
        return truncatechars(obj.result, 100)


class QueuedTaskAdmin(ModelAdmin):
    """Tasks waiting in the ORM broker, read-only. Arguments only for who may manage jobs."""

    list_display = ("id", "key", "name", "func", "group", "lock", "task_id")
    list_filter = ("key",)
    summary_fields = ("key", "lock", "task_id", "name", "func", "group")
    payload_fields = ("args", "kwargs", "q_options")

    def get_fields(self, request: HttpRequest, obj=None):
        return (*self.summary_fields, *(self.payload_fields if policies.can_read_job_payloads(request.user) else ()))

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.get_fields(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).using(Conf.ORM)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: OrmQ) -> None:
        obj.delete(using=Conf.ORM)


for model, model_admin in ((Schedule, ScheduleAdmin), (Success, TaskAdmin), (Failure, FailureAdmin), (OrmQ, QueuedTaskAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    if model is not OrmQ or Conf.ORM or Conf.TESTING:
        admin.site.register(model, model_admin)
