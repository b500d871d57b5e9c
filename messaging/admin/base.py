"""The console's base classes, shared by every app's admin: a ModelAdmin whose saves and
deletes are audited, and the read-only page and inline for logs and records."""

import re
from collections.abc import Callable
from uuid import uuid4

from django import forms
from django.contrib import admin
from django.core.cache import caches
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from unfold.admin import ModelAdmin, TabularInline

from messaging.admin.widgets import LabelledSplitDateTimeWidget
from messaging.audit import acting_as, diff, record_audit, snapshot
from messaging.paging import CappedCountPaginator
from messaging.queries import distinct_values
from messaging.storable import StorableJSONFormField


class AuditedModelAdmin(ModelAdmin):
    """Every save and delete made in the console lands in the audit trail with before/after.

    Admins whose model has a dedicated action override save_model and let the action audit.
    """

    audit_exclude = frozenset({"password"})
    formfield_overrides = {
        models.JSONField: {"form_class": StorableJSONFormField},
        models.DateTimeField: {"widget": LabelledSplitDateTimeWidget},
    }

    def changeform_view(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # Role and permission changes saved with the form (save_related) are audited by a
        # signal (messaging.audit.audit_m2m_change): it records them as this user's.
        with acting_as(request.user):
            return super().changeform_view(request, *args, **kwargs)

    def _audited_fields(self, obj, names) -> list[str]:
        concrete = {f.name for f in obj._meta.concrete_fields}
        return [name for name in names if name in concrete and name not in self.audit_exclude]

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        fields = self._audited_fields(obj, form.changed_data if change else form.cleaned_data)
        before = snapshot(obj.__class__.objects.get(pk=obj.pk), fields) if change and obj.pk else {}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            record_audit(
                actor=request.user, verb="updated" if change else "created", target=obj, changes=diff(before, snapshot(obj, fields))
            )

    def delete_model(self, request: HttpRequest, obj) -> None:
        with transaction.atomic():
            record_audit(actor=request.user, verb="deleted", target=obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for obj in queryset:
                record_audit(actor=request.user, verb="deleted", target=obj)
            super().delete_queryset(request, queryset)


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """AllValuesFieldListFilter for a big table: lists the column's values by jumping through
    its index (queries.distinct_values), not with a SELECT DISTINCT over every row."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        if self.lookup_choices.model is model and not field.null:  # a column of the list's own table
            self.lookup_choices = distinct_values(self.lookup_choices, field.name)


class ReadOnlyAdmin(ModelAdmin):
    """Logs and records people read but never edit in the console (changes go through actions).
    They grow without end: pages never count them in full (messaging.paging)."""

    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyInline(TabularInline):
    """Rows shown under a record (attempts, events, ledger entries), never added or edited there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def shown_once(model_admin: ModelAdmin, request: HttpRequest, template: str, **context) -> HttpResponse:
    """The page that shows a secret the moment it is created (an API token, a webhook
    secret), and never again: no cache may keep it."""
    response = TemplateResponse(
        request, template, {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **context}
    )
    response["Cache-Control"] = "no-store"
    return response


SUBMISSION_FIELD = "submission"
SUBMISSION_SECONDS = 86_400


def submission_field() -> forms.CharField:
    """A hidden id, new each time an add form that makes a secret is rendered (`add_once`)."""
    return forms.CharField(widget=forms.HiddenInput, required=False, max_length=32, initial=lambda: uuid4().hex)


def add_once(
    model_admin: ModelAdmin, request: HttpRequest, add_view: Callable[[], HttpResponse], *, again: Callable[[int | None], HttpResponse]
) -> HttpResponse:
    """Post an add form carrying a `submission_field` only once: a second post of the same id
    (the browser's reload of the page that showed the secret, a double click) creates nothing
    and gets `again(pk of what the first one created)`. `save_model` sets
    `request._mailroom_created_pk`; a post that created nothing (a form error) frees the id."""
    token = request.POST.get(SUBMISSION_FIELD, "") if request.method == "POST" else ""
    if not re.fullmatch(r"[0-9a-f]{32}", token):
        return add_view()
    cache = caches["default"]
    key = f"mailroom:submitted:{model_admin.model._meta.label_lower}:{token}"
    if not cache.add(key, 0, SUBMISSION_SECONDS):
        return again(cache.get(key) or None)
    try:
        response = add_view()
    finally:
        created = getattr(request, "_mailroom_created_pk", None)
        if created:
            cache.set(key, created, SUBMISSION_SECONDS)
        else:
            cache.delete(key)
    return response
