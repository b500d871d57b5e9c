"""Content area of the console: templates, their versions and the editor pages."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import action
from unfold.widgets import UnfoldAdminSelectWidget

from messaging import policies
from messaging.admin.audience import confirm_then
from messaging.admin.base import ReadOnlyAdmin
from messaging.content.packages import export_filename, export_package
from messaging.content.retirement import archive_template, delete_template, unarchive_template, was_sent
from messaging.content.versions import TEMPLATE_SETTINGS, create_template, deactivate_template, duplicate_template, update_template
from messaging.errors import MailroomError
from messaging.models import Channel, Template, TemplateVersion
from messaging.views.editor import TemplateDiffView, TemplateEditorView, TemplatePreviewView, TemplateTestSendView
from messaging.views.template_packages import template_import_view

Category = Template.Category
# Marketing kinds first; Transactional (its messages usually go on a transactional topic,
# which skips marketing consent) is a deliberate choice, never the default.
DEFAULT_CATEGORY = Category.NEWSLETTER


def category_choices() -> list:
    return [
        (_("Marketing"), [(c.value, c.label) for c in (Category.NEWSLETTER, Category.PROMOTION, Category.LIFECYCLE)]),
        (_("Transactional"), [(Category.TRANSACTIONAL.value, Category.TRANSACTIONAL.label)]),
    ]


def language_choices() -> list[tuple[str, str]]:
    return [(code, f"{name} ({code})") for code, name in settings.LANGUAGES]


class DuplicateForm(forms.Form):
    key = forms.SlugField(label=_("New key"), max_length=100)


@admin.register(Template)
class TemplateAdmin(ModelAdmin):
    list_display = ("name", "key", "locale", "category", "channel", "active_label", "editor_link")
    list_filter = (
        ("category", ChoicesDropdownFilter),
        ("channel", ChoicesDropdownFilter),
        "locale",
        "is_active",
        "from_catalog",
        ("archived_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("name", "key")
    list_select_related = ("active_version",)
    fields = ("key", "locale", "name", "category", "channel", "topic")
    actions = ["duplicate", "deactivate", "export_packages", "archive", "unarchive", "delete_unsent"]
    actions_list = ["list_import"]
    actions_detail = ["archive_one"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return ("key", "locale", "channel") if obj else ()  # fixed once made (update_template)

    def get_fields(self, request: HttpRequest, obj=None):
        """A WhatsApp template also names the template WhatsApp approved (messaging.whatsapp)."""
        if obj is not None and obj.channel == Channel.WHATSAPP:
            return (*self.fields, "whatsapp_template_sid", "whatsapp_variables")
        return self.fields

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {"category": DEFAULT_CATEGORY, "locale": settings.LANGUAGE_CODE, **super().get_changeform_initial_data(request)}

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "locale":  # one of the configured languages, not free text
            return forms.ChoiceField(
                label=_("Language"),
                choices=language_choices(),
                widget=UnfoldAdminSelectWidget,
                help_text=_("Add the same key in another language for a translation."),
            )
        if db_field.name == "category":
            return forms.ChoiceField(
                label=_("Category"),
                choices=category_choices(),
                widget=UnfoldAdminSelectWidget,
                help_text=_(
                    "Marketing unless the message is one a person must get (a receipt, a password reset). "
                    "Consent follows the topic: a transactional topic skips marketing consent."
                ),
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description=_("active version"))
    def active_label(self, obj: Template) -> str:
        if obj.archived_at:
            return _("archived")
        if not obj.is_active:
            return _("deactivated")
        return f"v{obj.active_version.number}" if obj.active_version else "—"

    @admin.display(description=_("editor"))
    def editor_link(self, obj: Template) -> str:
        return format_html(
            '<a class="underline text-primary-600" href="{}">{}</a>',
            reverse("admin:messaging_template_editor", args=[obj.pk]),
            _("Open editor"),
        )

    def save_model(self, request: HttpRequest, obj: Template, form, change: bool) -> None:
        # The form already ran Template.full_clean() (the same checks); the action re-checks and audits.
        if change:
            changed = {name: getattr(obj, name) for name in form.changed_data if name in TEMPLATE_SETTINGS}
            update_template(actor=request.user, template=obj, **changed)
            return
        created = create_template(
            actor=request.user, key=obj.key, name=obj.name, locale=obj.locale, category=obj.category, channel=obj.channel, topic=obj.topic
        )
        obj.pk = created.pk
        obj._state.adding = False

    def response_add(self, request: HttpRequest, obj: Template, post_url_continue=None) -> HttpResponse:
        return redirect("admin:messaging_template_editor", pk=obj.pk)

    @admin.action(description=_("Deactivate"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        for template in queryset:
            deactivate_template(actor=request.user, template=template)
        messages.success(request, _("Deactivated."))

    @admin.action(description=_("Duplicate"), permissions=["add"])
    def duplicate(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = DuplicateForm(request.POST if "key" in request.POST else None)
        if len(queryset) != 1:
            messages.error(request, _("Pick exactly one template to duplicate."))
            return None
        if not form.is_valid():
            return TemplateResponse(
                request,
                "console/template_duplicate.html",
                {**self.admin_site.each_context(request), "title": _("Duplicate template"), "form": form, "template": queryset[0]},
            )
        try:
            copy = duplicate_template(actor=request.user, template=queryset[0], key=form.cleaned_data["key"])
        except MailroomError as error:
            messages.error(request, str(error))
            return None
        messages.success(request, _("Duplicated as %(key)s.") % {"key": copy.key})
        return None

    # Deleting: only a template never sent (messaging.content.retirement); Django's bulk
    # delete would skip that check, so it is replaced by `delete_unsent`.
    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return policies.can_delete_templates(request.user)

    def has_archive_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_archive_templates(request.user)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return policies.can_export_templates(request.user)

    def has_import_permission(self, request: HttpRequest) -> bool:
        return policies.can_import_templates(request.user)

    def get_actions(self, request: HttpRequest, action_location=admin.ActionLocation.CHANGE_LIST) -> dict:
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request: HttpRequest, object_id, extra_context=None) -> HttpResponse:
        template = self.get_object(request, object_id)
        if template is not None and was_sent(template):
            messages.error(request, _("This template has been sent: it cannot be deleted, archive it instead."))
            return redirect("admin:messaging_template_change", template.pk)
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs, request: HttpRequest):
        deleted, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, model_count, set(), protected  # the versions go with their template

    def delete_model(self, request: HttpRequest, obj: Template) -> None:
        delete_template(actor=request.user, template=obj)

    @admin.action(description=_("Delete (never sent)"), permissions=["delete"])
    def delete_unsent(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        confirmation = confirm_then(
            request,
            queryset,
            action="delete_unsent",
            title=_("Delete templates"),
            warning=_("These templates and all their versions will be deleted. A template already sent is kept: archive it instead."),
        )
        if confirmation is not None:
            return confirmation
        deleted = 0
        for template in queryset:
            try:
                delete_template(actor=request.user, template=template)
            except MailroomError as error:
                messages.error(request, str(error))
            else:
                deleted += 1
        if deleted:
            messages.success(request, _("%(n)s template(s) deleted.") % {"n": deleted})
        return None

    @admin.action(description=_("Archive"), permissions=["archive"])
    def archive(self, request: HttpRequest, queryset: QuerySet) -> None:
        for template in queryset:
            archive_template(actor=request.user, template=template)
        messages.success(request, _("Archived: hidden from pickers and never sent again; the history stays."))

    @action(
        description=_("Archive"),
        icon="archive",
        permissions=["archive"],
        dialog={
            "title": _("Archive this template?"),
            "description": _("It is hidden from pickers and never sent again; its versions, messages and reports stay."),
            "form_submit_text": _("Archive"),
        },
    )
    def archive_one(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        """On the template's page, where "it has been sent: archive it instead" is said."""
        template = get_object_or_404(Template, pk=object_id)
        archive_template(actor=request.user, template=template)
        messages.success(request, _("Archived: hidden from pickers and never sent again; the history stays."))
        url = reverse("admin:messaging_template_change", args=[template.pk])
        if not request.headers.get("HX-Request"):
            return HttpResponseRedirect(url)
        response = HttpResponse()  # the dialog posts through HTMX: tell it where to go
        response["HX-Redirect"] = url
        return response

    @admin.action(description=_("Unarchive"), permissions=["archive"])
    def unarchive(self, request: HttpRequest, queryset: QuerySet) -> None:
        for template in queryset:
            unarchive_template(actor=request.user, template=template)
        messages.success(request, _("Unarchived. Activate a version in the editor to send it again."))

    @admin.action(description=_("Export as zip"), permissions=["export"])
    def export_packages(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        templates = list(queryset)
        response = HttpResponse(export_package(templates), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(templates)}"'
        return response

    @action(description=_("Import templates"), url_path="list-import", permissions=["import"])
    def list_import(self, request: HttpRequest) -> HttpResponse:
        return redirect("admin:messaging_template_import")

    def get_urls(self):
        def view(cls):
            return self.admin_site.admin_view(cls.as_view(model_admin=self))

        return [
            path(
                "import/", self.admin_site.admin_view(lambda request: template_import_view(self, request)), name="messaging_template_import"
            ),
            path("<int:pk>/editor/", view(TemplateEditorView), name="messaging_template_editor"),
            path("<int:pk>/editor/preview/", view(TemplatePreviewView), name="messaging_template_preview"),
            path("<int:pk>/editor/test-send/", view(TemplateTestSendView), name="messaging_template_test_send"),
            path("<int:pk>/versions/diff/", view(TemplateDiffView), name="messaging_template_diff"),
            *super().get_urls(),
        ]


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdmin):
    list_display = ("template", "number", "author", "note", "created_at")
    list_filter = ("template__locale",)
    search_fields = ("template__name", "template__key", "note")
    readonly_fields = (
        "template",
        "number",
        "subject",
        "preheader",
        "body_format",
        "body",
        "text_body",
        "sms_body",
        "note",
        "author",
        "created_at",
    )
    fields = readonly_fields
