"""Console pages for the messaging app. Thin: they parse the form and call an action."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ImportExportModelAdmin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, DropdownFilter, FieldTextFilter, RangeDateFilter, RelatedDropdownFilter
from unfold.contrib.import_export.forms import ExportForm

from messaging.admin.base import AuditedModelAdmin, IndexedValuesFilter, ReadOnlyAdmin
from messaging.admin.contact_page import ContactAdminForm, contact_page_context
from messaging.admin.imports import contact_import_view
from messaging.admin.topic_form import TopicForm
from messaging.consent import ConsentContext, lift_suppression, subscribe, suppress_address, unsubscribe
from messaging.consent_text import describe_consent
from messaging.contact_fields import EDITABLE_FIELDS
from messaging.contacts import create_contact, delete_contact, erase_contact, update_contact
from messaging.errors import MailroomError
from messaging.models import AuditEntry, ConsentRecord, Contact, Subscription, Suppression, Topic
from messaging.paging import CappedCountPaginator
from messaging.policies import can_import_contacts
from messaging.resources import ContactResource
from messaging.spreadsheets import SafeCSV
from messaging.storable import StorableJSONFormField
from messaging.verification import send_email_verification

VERIFICATION_BATCH = 500


def confirm_then(request: HttpRequest, queryset: QuerySet, *, action: str, title: str, warning: str) -> HttpResponse | None:
    """Render a confirmation page for a destructive bulk action; None once confirmed."""
    if request.POST.get("confirmed") == "yes":
        return None
    return TemplateResponse(
        request,
        "console/confirm_action.html",
        {
            **admin.site.each_context(request),
            "title": title,
            "warning": warning,
            "objects": queryset,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": queryset.model._meta,
        },
    )


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    can_delete = False
    fields = ("topic", "channel", "status", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class SubscribedToFilter(DropdownFilter):
    """Contacts subscribed to a topic (on any channel): an EXISTS on the subscription's
    unique (contact, topic, channel) index, so the list's first page stays cheap."""

    title = _("subscribed to")
    parameter_name = "subscribed_to"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [(str(topic.pk), topic.name) for topic in Topic.objects.order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        subscribed = Subscription.objects.filter(contact=OuterRef("pk"), topic_id=int(value), status=Subscription.Status.SUBSCRIBED)
        return queryset.filter(Exists(subscribed))


class LanguageFilter(DropdownFilter):
    title = _("language")
    parameter_name = "language"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [(code, name) for code, name in settings.LANGUAGES]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(locale=self.value()) if self.value() else queryset


@admin.register(Contact)
class ContactAdmin(ModelAdmin, ImportExportModelAdmin):
    paginator = CappedCountPaginator
    form = ContactAdminForm
    # Under the form: the attributes as a table and the timeline, a 360° view of the contact.
    change_form_outer_after_template = "console/contact_timeline.html"
    resource_classes = [ContactResource]
    import_formats = [SafeCSV]  # what messaging.resources and the background import read (no html, no yaml)
    export_formats = [SafeCSV]  # every cell formula-escaped
    formfield_overrides = {models.JSONField: {"form_class": StorableJSONFormField}}
    export_form_class = ExportForm
    list_display = ("__str__", "full_name", "phone", "locale", "timezone", "created_at", "is_active")
    # No filter lists the column's distinct values: at a million contacts that is a scan per page.
    list_filter = (SubscribedToFilter, LanguageFilter, ("timezone", FieldTextFilter), ("created_at", RangeDateFilter))
    list_filter_submit = True
    search_fields = ("email",)  # the box is shown; get_search_results says what it matches
    search_help_text = _("The beginning of an email address, a phone number (+33…) or an external id.")
    list_select_related = ()
    show_full_result_count = False
    list_per_page = 50
    readonly_fields = ("created_at", "updated_at", "deleted_at", "erased_at")
    fieldsets = (
        (_("Identity"), {"fields": ("email", "phone", "external_id", "first_name", "last_name")}),
        (_("Preferences"), {"fields": ("locale", "timezone")}),
        (_("Data"), {"fields": ("attributes", "push_tokens"), "classes": ["tab"]}),
        (_("History"), {"fields": ("created_at", "updated_at", "deleted_at", "erased_at"), "classes": ["tab"]}),
    )
    inlines = [SubscriptionInline]  # consent and preference changes are in the contact's timeline
    actions = ["send_verification_emails", "soft_delete_contacts", "erase_contacts"]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Prefixes of the stored (normalised, lower-case) identities: each has a unique index
        whose pattern twin serves LIKE 'term%' on PostgreSQL, so a search reads a few index
        pages at a million contacts (a "contains" search reads them all)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(email__startswith=term.lower()) | Q(external_id__startswith=term)
        if term.lstrip("+").isdigit():
            matches |= Q(phone__startswith=term if term.startswith("+") else "+" + term)
        return queryset.filter(matches), False

    def import_action(self, request: HttpRequest, **kwargs) -> HttpResponse:
        """Every file goes through an import job (messaging.import_jobs): topics, legal
        basis and mode chosen here; small files imported at once, large ones by a worker."""
        return contact_import_view(self, request)

    def process_import(self, request: HttpRequest, **kwargs) -> HttpResponse:
        raise Http404  # django-import-export's preview-then-confirm: not a second import path

    def has_import_permission(self, request: HttpRequest) -> bool:
        return can_import_contacts(request.user)

    @admin.display(description=_("full name"))
    def full_name(self, obj: Contact) -> str:
        return obj.full_name

    @admin.display(boolean=True, description=_("active"))
    def is_active(self, obj: Contact) -> bool:
        return obj.deleted_at is None

    def render_change_form(self, request: HttpRequest, context: dict, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context.update(contact_page_context(request=request, contact=obj, user=request.user))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_actions(self, request: HttpRequest, action_location=admin.ActionLocation.CHANGE_LIST):
        actions = super().get_actions(request, action_location)
        actions.pop("delete_selected", None)  # contacts are soft-deleted or erased, never dropped
        return actions

    def save_model(self, request: HttpRequest, obj: Contact, form, change: bool) -> None:
        # The form already ran Contact.full_clean(); the action re-checks and audits.
        values = {name: getattr(obj, name) for name in EDITABLE_FIELDS}
        if change:
            update_contact(actor=request.user, contact=obj, **{k: v for k, v in values.items() if k in form.changed_data})
        else:
            created = create_contact(actor=request.user, **values)
            obj.pk = created.pk
            obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Contact) -> None:
        delete_contact(actor=request.user, contact=obj)

    @admin.action(description=_("Send a verification email"), permissions=["change"])
    def send_verification_emails(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Each selected contact with an unverified address gets a single-use link; the
        others are counted, not sent to."""
        sent, skipped = 0, 0
        for contact in queryset.filter(email_verified_at=None)[:VERIFICATION_BATCH]:
            try:
                send_email_verification(actor=request.user, contact=contact)
                sent += 1
            except MailroomError:  # no address, erased, or asked too often
                skipped += 1
        skipped += queryset.count() - sent - skipped
        self.message_user(request, ngettext("%d verification email queued.", "%d verification emails queued.", sent) % sent)
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d contact skipped: already verified, no address, or asked too often (at most %d at a time).",
                    "%d contacts skipped: already verified, no address, or asked too often (at most %d at a time).",
                    skipped,
                )
                % (skipped, VERIFICATION_BATCH),
                messages.WARNING,
            )

    @admin.action(description=_("Delete (keeps history)"), permissions=["delete"])
    def soft_delete_contacts(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        page = confirm_then(
            request,
            queryset,
            action="soft_delete_contacts",
            title=_("Delete these contacts?"),
            warning=_("They will receive nothing more. Their history and statistics stay."),
        )
        if page:
            return page
        for contact in queryset:
            delete_contact(actor=request.user, contact=contact)
        self.message_user(request, ngettext("%d contact deleted.", "%d contacts deleted.", len(queryset)) % len(queryset))
        return None

    @admin.action(description=_("Erase personal data (GDPR)"), permissions=["delete"])
    def erase_contacts(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        page = confirm_then(
            request,
            queryset,
            action="erase_contacts",
            title=_("Erase these contacts for good?"),
            warning=_("Names, addresses and attributes are removed and cannot be recovered. Aggregate statistics stay."),
        )
        if page:
            return page
        for contact in queryset:
            erase_contact(actor=request.user, contact=contact)
        self.message_user(request, ngettext("%d contact erased.", "%d contacts erased.", len(queryset)) % len(queryset))
        return None


@admin.register(Topic)
class TopicAdmin(AuditedModelAdmin):
    form = TopicForm
    list_display = ("name", "key", "kind", "time_sensitive", "position")
    list_filter = (("kind", ChoicesDropdownFilter),)
    search_fields = ("name", "key")
    prepopulated_fields = {"key": ("name",)}


@admin.register(Subscription)
class SubscriptionAdmin(ModelAdmin):
    paginator = CappedCountPaginator
    list_display = ("contact", "topic", "channel", "status", "updated_at")
    list_filter = (("topic", RelatedDropdownFilter), ("channel", ChoicesDropdownFilter), ("status", ChoicesDropdownFilter))
    list_filter_submit = True
    search_fields = ("contact__email", "contact__phone")
    autocomplete_fields = ("contact",)
    list_select_related = ("contact", "topic")
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return ("contact", "topic", "channel") if obj else ()

    def save_model(self, request: HttpRequest, obj: Subscription, form, change: bool) -> None:
        context = ConsentContext(source=ConsentRecord.Source.CONSOLE)
        try:
            if obj.status == Subscription.Status.SUBSCRIBED:
                saved = subscribe(actor=request.user, contact=obj.contact, topic=obj.topic, channel=obj.channel, context=context)
            else:
                saved = unsubscribe(actor=request.user, contact=obj.contact, topic=obj.topic, channel=obj.channel, context=context)[0]
        except MailroomError as error:
            messages.error(request, str(error))
            return
        obj.pk = saved.pk
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # withdraw consent instead, so the log shows it


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    """The consent log: every record in words (messaging.consent_text), never its details dict."""

    list_display = ("created_at", "contact", "summary", "source", "legal_basis", "actor")
    fields = (
        "created_at",
        "contact",
        "summary",
        "topic",
        "channel",
        "action",
        "source",
        "legal_basis",
        "actor",
        "ip_address",
        "user_agent",
        "wording_version",
    )
    readonly_fields = fields
    list_filter = (
        ("action", ChoicesDropdownFilter),
        ("source", ChoicesDropdownFilter),
        ("legal_basis", ChoicesDropdownFilter),
        ("channel", ChoicesDropdownFilter),
        ("topic", RelatedDropdownFilter),
        ("created_at", RangeDateFilter),
    )
    list_filter_submit = True
    search_fields = ("contact__email", "contact__phone")
    list_select_related = ("contact", "topic", "actor")
    show_full_result_count = False

    @admin.display(description=_("what happened"))
    def summary(self, obj: ConsentRecord) -> str:
        return describe_consent(obj)


@admin.register(Suppression)
class SuppressionAdmin(ModelAdmin):
    paginator = CappedCountPaginator
    list_display = ("address", "channel", "reason", "note", "created_by", "created_at")
    list_filter = (("channel", ChoicesDropdownFilter), ("reason", ChoicesDropdownFilter), ("created_at", RangeDateFilter))
    list_filter_submit = True
    search_fields = ("address",)
    fields = ("address", "channel", "reason", "note")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.fields if obj else ()

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False if obj else super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Suppression, form, change: bool) -> None:
        saved = suppress_address(actor=request.user, address=obj.address, channel=obj.channel, reason=obj.reason, note=obj.note)
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Suppression) -> None:
        lift_suppression(actor=request.user, suppression=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for suppression in queryset:
            lift_suppression(actor=request.user, suppression=suppression)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "verb_display", "target_type", "target_repr")
    list_filter = (
        ("verb", IndexedValuesFilter),
        ("target_type", IndexedValuesFilter),
        ("created_at", RangeDateFilter),
    )
    list_filter_submit = True
    search_fields = ("target_repr", "actor__username", "target_id")
    list_select_related = ("actor",)
    show_full_result_count = False
    readonly_fields = ("created_at", "actor", "verb", "target_type", "target_id", "target_repr", "changes")

    @admin.display(description=_("action"), ordering="verb")
    def verb_display(self, obj: AuditEntry) -> str:
        return obj.verb_label
