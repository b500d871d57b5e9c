"""Delivery area of the console: outbox, providers, sandbox inbox, inbound messages."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter, RelatedDropdownFilter
from unfold.decorators import action

from messaging import policies
from messaging.admin.base import AuditedModelAdmin, ReadOnlyAdmin, ReadOnlyInline
from messaging.audit import redact
from messaging.content.previews import PREVIEW_SANDBOX, preview_document
from messaging.delivery.inbound import handler_choices
from messaging.delivery.on_demand import send_test_message
from messaging.delivery.outbox import cancel_message, retry_message
from messaging.delivery.retention import pruned_notice
from messaging.errors import MailroomError
from messaging.mailbox import check_imap_settings, poll_email_inbox
from messaging.models import Attachment, DeliveryAttempt, DeliveryEvent, Inbox, InboxMessage, OutboxMessage, Provider, SandboxMessage
from messaging.providers.base import ProviderMisconfigured
from messaging.providers.email.esp import check_email_backend
from messaging.secrets import hidden_notice


def body_preview(obj: OutboxMessage | SandboxMessage) -> str:
    """A message's rendered content, or for one carrying a secret (reset or verification
    link, gift-card code) the notice that it is hidden: for every role, Admin included."""
    if (notice := _pruned(obj)) is not None:
        return notice_body(notice)
    if obj.is_sensitive:
        return hidden_body()
    return preview_iframe(obj.body_html, obj.body_text)


def _pruned(obj: OutboxMessage | SandboxMessage) -> str | None:
    """The retention notice of a message (or of the message a sandbox copy is of)."""
    message = obj if isinstance(obj, OutboxMessage) else (obj.message if obj.message_id else None)
    return pruned_notice(message) if message is not None else None


def notice_body(notice: str) -> str:
    return format_html('<p class="italic text-base-500 dark:text-base-400">{}</p>', notice)


def attachment_links(message: OutboxMessage | None) -> str:
    """The message's files, each a download link (the view checks who may read them)."""
    if message is not None and (notice := pruned_notice(message)) is not None:
        return notice
    if message is None or not message.has_attachments:
        return "-"
    if message.is_sensitive:
        return hidden_notice()
    return format_html_join(
        "",
        '<p><a class="text-primary-600" href="{}">{}</a> <span class="text-base-500">{} · {} bytes{}</span></p>',
        (
            (
                reverse("admin:messaging_outboxmessage_attachment", args=[message.pk, item.pk]),
                item.filename,
                item.content_type,
                item.size,
                f" · cid:{item.content_id}" if item.content_id else "",
            )
            for item in message.attachments.all()
        ),
    )


def hidden_body() -> str:
    return format_html('<p class="italic text-base-500 dark:text-base-400">{}</p>', hidden_notice())


def preview_iframe(html: str, text: str = "") -> str:
    """User content is only ever shown inside a sandboxed iframe, never in the console DOM."""
    if not html:
        return format_html('<pre class="whitespace-pre-wrap text-sm">{}</pre>', text)
    return format_html(
        '<iframe sandbox="{}" srcdoc="{}" title="preview" class="w-full bg-white rounded-default border border-base-200" style="height:420px">'
        "</iframe>",
        PREVIEW_SANDBOX,
        preview_document(html),
    )


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = ("created_at", "provider", "outcome", "response", "duration_ms")
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = DeliveryEvent
    fields = ("occurred_at", "kind", "is_automated", "external_id", "payload")
    readonly_fields = fields


class OriginFilter(admin.SimpleListFilter):
    """Who queued the message, from its dedup key (campaign:<id>:…, automation:<run>:…);
    `?origin=campaign:<id>` narrows to one campaign (the campaign's recipients page links it)."""

    title = _("origin")
    parameter_name = "origin"

    def lookups(self, request, model_admin):
        return [("campaign", _("Campaigns")), ("automation", _("Automations")), ("other", _("API, console and system"))]

    def queryset(self, request, queryset):
        value = self.value() or ""
        if value in ("campaign", "automation"):
            return queryset.filter(dedup_key__startswith=f"{value}:")
        if value.startswith("campaign:") and value.removeprefix("campaign:").isdigit():
            return queryset.filter(dedup_key__startswith=f"{value}:")
        if value == "other":
            return queryset.exclude(dedup_key__startswith="campaign:").exclude(dedup_key__startswith="automation:")
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "channel", "to_address", "subject", "status", "priority", "attempts", "provider", "next_attempt_at", "sent_at")
    list_filter = (
        ("status", ChoicesDropdownFilter),
        ("channel", ChoicesDropdownFilter),
        ("provider", RelatedDropdownFilter),
        ("topic", RelatedDropdownFilter),
        OriginFilter,
        ("created_at", RangeDateFilter),
    )
    list_filter_submit = True
    search_fields = ("to_address",)  # the box is shown; get_search_results says what it matches
    search_help_text = _("An address (or its beginning), a message number (#123), a dedup key or a provider's message id.")
    list_select_related = ("provider",)
    show_full_result_count = False
    list_before_template = "console/outbox_queue_panel.html"
    inlines = [AttemptInline, EventInline]
    actions = ["requeue_messages", "cancel_messages"]
    fieldsets = (
        (None, {"fields": ("status", "error", "channel", "to_address", "from_address", "topic", "is_marketing", "contact")}),
        (_("Content"), {"fields": ("subject", "is_sensitive", "content_preview", "text_content", "attachment_list")}),
        (
            _("Delivery"),
            {
                "fields": (
                    "priority",
                    "attempts",
                    "max_attempts",
                    "scheduled_at",
                    "next_attempt_at",
                    "lease_until",
                    "provider",
                    "provider_message_id",
                    "message_id",
                    "dedup_key",
                    "created_at",
                    "sent_at",
                    "body_pruned_at",
                ),
                "classes": ["tab"],
            },
        ),
        (_("Data"), {"fields": ("headers", "metadata"), "classes": ["tab"]}),
    )

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Whole keys and address prefixes, each on its index: a "contains" search over the
        subject and the address reads the whole outbox (seconds at five million rows)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(to_address__startswith=term.lower() if "@" in term else term) | Q(dedup_key=term) | Q(provider_message_id=term)
        if term.lstrip("#").isdigit() and len(term.lstrip("#")) <= 18:  # a bigint
            matches |= Q(pk=int(term.lstrip("#")))
        return queryset.filter(matches), False

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    @admin.display(description=_("rendered content"))
    def content_preview(self, obj: OutboxMessage) -> str:
        return body_preview(obj)

    @admin.display(description=_("text"))
    def text_content(self, obj: OutboxMessage) -> str:
        if (notice := pruned_notice(obj)) is not None:
            return notice
        return hidden_notice() if obj.is_sensitive else obj.body_text

    @admin.display(description=_("attachments"))
    def attachment_list(self, obj: OutboxMessage) -> str:
        return attachment_links(obj)

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return policies.can_manage_messages(request.user)

    @admin.action(description=_("Requeue"), permissions=["requeue"])
    def requeue_messages(self, request: HttpRequest, queryset: QuerySet) -> None:
        if done := self._each(request, queryset, retry_message):
            messages.success(request, ngettext("%d message requeued.", "%d messages requeued.", done) % done)

    @admin.action(description=_("Cancel"), permissions=["requeue"])
    def cancel_messages(self, request: HttpRequest, queryset: QuerySet) -> None:
        if done := self._each(request, queryset, cancel_message):
            messages.success(request, ngettext("%d message cancelled.", "%d messages cancelled.", done) % done)

    def _each(self, request: HttpRequest, queryset: QuerySet, action) -> int:
        done = 0
        for message in queryset:
            try:
                action(actor=request.user, message=message)
                done += 1
            except MailroomError as error:
                messages.warning(request, f"#{message.pk}: {error}")
        return done

    def get_urls(self):
        panel = path("queue-panel/", self.admin_site.admin_view(self.queue_panel), name="messaging_outbox_queue_panel")
        download = path(
            "<int:message_id>/attachments/<int:attachment_id>/",
            self.admin_site.admin_view(self.download_attachment),
            name="messaging_outboxmessage_attachment",
        )
        return [panel, download, *super().get_urls()]

    def download_attachment(self, request: HttpRequest, message_id: int, attachment_id: int) -> HttpResponse:
        """One file of a message, for whoever may read the message (the same policy)."""
        attachment = get_object_or_404(Attachment.objects.select_related("message"), pk=attachment_id, message_id=message_id)
        if not policies.can_read_attachments(request.user, attachment.message):
            raise PermissionDenied
        return FileResponse(
            attachment.file.storage.open(attachment.file.name, "rb"),
            as_attachment=True,
            filename=attachment.filename,
            content_type=attachment.content_type,
        )

    def queue_panel(self, request: HttpRequest) -> HttpResponse:
        """The live queue counts, refreshed by HTMX every few seconds."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        return TemplateResponse(request, "console/outbox_queue_panel.html#counts", queue_context())


def queue_context() -> dict:
    counts = dict(OutboxMessage.objects.values_list("status").annotate(n=Count("id")))
    due = OutboxMessage.objects.filter(status=OutboxMessage.Status.QUEUED, next_attempt_at__lte=timezone.now()).count()
    return {
        "queue": [(label, counts.get(value, 0), value) for value, label in OutboxMessage.Status.choices],
        "due_now": due,
        "updated_at": timezone.now(),
    }


class TestSendForm(forms.Form):
    to = forms.CharField(label=_("Send to"), max_length=254, help_text=_("An email address or phone number, as the channel needs."))


class ProviderForm(forms.ModelForm):
    class Meta:
        model = Provider
        fields = ("name", "channel", "kind", "priority", "is_active", "config", "rate_per_second", "rate_per_hour")

    def clean(self) -> dict:
        cleaned = super().clean()
        config = cleaned.get("config")
        if cleaned.get("kind") == Provider.Kind.ANYMAIL and isinstance(config, dict) and config.get("backend"):
            try:
                check_email_backend(config["backend"])
            except ProviderMisconfigured as error:
                self.add_error("config", str(error))
        return cleaned


@admin.register(Provider)
class ProviderAdmin(AuditedModelAdmin):
    form = ProviderForm
    list_display = ("name", "channel", "kind", "priority", "is_active", "health", "sent_count", "failed_count", "last_success_at")
    list_filter = (("channel", ChoicesDropdownFilter), ("kind", ChoicesDropdownFilter), "is_active")
    search_fields = ("name",)
    readonly_fields = (
        "health",
        "consecutive_failures",
        "resting_until",
        "last_success_at",
        "last_failure_at",
        "last_error",
        "sent_count",
        "failed_count",
        "retried_count",
    )
    fieldsets = (
        (None, {"fields": ("name", "channel", "kind", "priority", "is_active", "config")}),
        (_("Rate limits"), {"fields": ("rate_per_second", "rate_per_hour")}),
        (_("Health"), {"fields": readonly_fields}),
    )
    actions = ["send_test"]
    routing_fields = ("name", "channel", "kind", "configuration")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # Pausing, priorities and rate limits are Ops' to run; where a provider sends is not.
        if policies.can_route_messages(request.user):
            return self.readonly_fields
        return (*self.routing_fields, *self.readonly_fields)

    def get_fieldsets(self, request: HttpRequest, obj=None):
        if policies.can_route_messages(request.user):
            return self.fieldsets
        # Read-only, the configuration is shown without its inline credentials (an ESP's
        # api_key opens the ESP's own logs of every message, reset links included).
        swap = {"config": "configuration"}
        return [(name, {**options, "fields": tuple(swap.get(f, f) for f in options["fields"])}) for name, options in self.fieldsets]

    @admin.display(description=_("configuration"))
    def configuration(self, obj: Provider) -> str:
        return format_html(
            '<pre class="whitespace-pre-wrap text-sm">{}</pre>', json.dumps(redact(obj.config), indent=2, ensure_ascii=False)
        )

    @admin.display(description=_("health"))
    def health(self, obj: Provider) -> str:
        if obj.resting_until and obj.resting_until > timezone.now():
            return format_html(
                '<span class="text-red-600">{}</span>',
                _("resting until %(t)s") % {"t": f"{timezone.localtime(obj.resting_until):%H:%M:%S}"},
            )
        if obj.consecutive_failures:
            return format_html(
                '<span class="text-orange-600">{}</span>',
                ngettext("%(n)s failure in a row", "%(n)s failures in a row", obj.consecutive_failures) % {"n": obj.consecutive_failures},
            )
        return format_html('<span class="text-green-700 dark:text-green-400">{}</span>', _("healthy"))

    def has_test_permission(self, request: HttpRequest) -> bool:
        return policies.can_run_providers(request.user)

    @admin.action(description=_("Send a test message"), permissions=["test"])
    def send_test(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = TestSendForm(request.POST if "to" in request.POST else None, initial={"to": request.user.email})
        if not form.is_valid():
            return TemplateResponse(
                request,
                "console/provider_test_send.html",
                {**self.admin_site.each_context(request), "title": _("Send a test message"), "form": form, "providers": queryset},
            )
        for provider in queryset:
            try:
                message = send_test_message(actor=request.user, provider=provider, to=form.cleaned_data["to"])
            except MailroomError as error:
                messages.error(request, f"{provider}: {error}")
                continue
            level = messages.SUCCESS if message.status == OutboxMessage.Status.SENT else messages.ERROR
            messages.add_message(request, level, f"{provider}: {message.get_status_display()} {message.error}".strip())
        return None


class SandboxAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "channel", "to_address", "subject", "provider")
    list_filter = (("channel", ChoicesDropdownFilter), ("created_at", RangeDateFilter))
    list_filter_submit = True
    search_fields = ("to_address", "subject")
    show_full_result_count = False
    fields = (
        "created_at",
        "channel",
        "from_address",
        "to_address",
        "subject",
        "is_sensitive",
        "preview",
        "text_content",
        "headers",
        "attachment_list",
        "message",
    )
    readonly_fields = fields

    @admin.display(description=_("attachments"))
    def attachment_list(self, obj: SandboxMessage) -> str:
        return attachment_links(obj.message)

    @admin.display(description=_("preview"))
    def preview(self, obj: SandboxMessage) -> str:
        if obj.is_sensitive:  # say why, and how to get it: a newcomer trying a sign-up form lands here
            return format_html(
                '{}<p class="text-sm text-base-500 dark:text-base-400">{}</p>',
                hidden_body(),
                _(
                    "It carries a link or code meant for one person (a password reset, a sign-up confirmation): only its "
                    "recipient can read it. To receive such mail yourself, send through a real email provider "
                    "(Settings → Sending settings)."
                ),
            )
        return body_preview(obj)

    @admin.display(description=_("text"))
    def text_content(self, obj: SandboxMessage) -> str:
        if (notice := _pruned(obj)) is not None:
            return notice
        return hidden_notice() if obj.is_sensitive else obj.body_text


admin.site.register(SandboxMessage, SandboxAdmin)


IMAP_FIELDS = ("imap_host", "imap_port", "imap_security", "imap_username", "imap_password_secret", "imap_folder")


class InboxForm(forms.ModelForm):
    """The handler is picked from the registered ones (messaging.delivery.inbound.HANDLERS), never typed.
    The IMAP settings follow messaging.mailbox.check_imap_settings."""

    handler = forms.ChoiceField(label=_("handler"), choices=handler_choices)

    class Meta:
        model = Inbox
        fields = ("name", "channel", "address", "handler", "is_active", *IMAP_FIELDS)

    def _post_clean(self) -> None:
        super()._post_clean()
        try:
            check_imap_settings(self.instance)
        except forms.ValidationError as error:
            self._update_errors(error)  # a field this role does not see: said above the form


@admin.register(Inbox)
class InboxAdmin(AuditedModelAdmin):
    form = InboxForm
    list_display = ("name", "channel", "address", "handler", "is_active", "mailbox_status")
    list_filter = (("channel", ChoicesDropdownFilter),)
    readonly_fields = ("mailbox_status", "imap_last_uid")
    fieldsets = (
        (None, {"fields": ("name", "channel", "address", "handler", "is_active")}),
        (
            _("Mailbox (IMAP)"),
            {
                "fields": (*IMAP_FIELDS, *readonly_fields),
                "description": _(
                    "An email inbox with a host is read every minute: replies go to the handler, "
                    "bounce reports and complaints are recorded on the message they name."
                ),
            },
        ),
    )
    actions_detail = ["check_mailbox"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # Which server Mailroom logs in to with which secret is Admin's; Ops runs the inbox.
        if policies.can_configure_mailboxes(request.user):
            return self.readonly_fields
        return (*IMAP_FIELDS, *self.readonly_fields)

    @admin.display(description=_("mailbox"))
    def mailbox_status(self, obj: Inbox) -> str:
        if not obj.imap_host:
            return "-"
        if obj.imap_polled_at is None:
            return _("not checked yet")
        checked = f"{timezone.localtime(obj.imap_polled_at):%Y-%m-%d %H:%M:%S}"
        if obj.imap_error:
            return format_html('<span class="text-red-600">{}: {}</span>', checked, obj.imap_error)
        return format_html('<span class="text-green-700 dark:text-green-400">{}</span>', _("checked %(when)s") % {"when": checked})

    def has_check_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_check_mailboxes(request.user)

    @action(
        description=_("Check mailbox now"),
        icon="mail",
        permissions=["check"],
        dialog={
            "title": _("Check this mailbox now?"),
            "description": _("Reads its new mail now instead of at the next minute."),
            "form_submit_text": _("Check mailbox now"),
        },
    )
    def check_mailbox(self, request: HttpRequest, form, object_id: str) -> HttpResponse:
        inbox = get_object_or_404(Inbox, pk=object_id)
        url = reverse("admin:messaging_inbox_change", args=[inbox.pk])
        if not inbox.imap_host:
            messages.error(request, _("This inbox has no IMAP host."))
        elif (result := poll_email_inbox(inbox=inbox)).error:
            messages.error(request, result.error)
        else:
            messages.success(request, ngettext("%d new mail read.", "%d new mails read.", result.read) % result.read)
        if not request.headers.get("HX-Request"):
            return HttpResponseRedirect(url)
        response = HttpResponse()  # the dialog posts through HTMX: tell it where to go
        response["HX-Redirect"] = url
        return response


@admin.register(InboxMessage)
class InboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "channel", "from_address", "to_address", "body", "status", "result")
    list_filter = (("channel", ChoicesDropdownFilter), ("status", ChoicesDropdownFilter), ("received_at", RangeDateFilter))
    list_filter_submit = True
    search_fields = ("from_address", "body")
    readonly_fields = (
        "received_at",
        "inbox",
        "channel",
        "from_address",
        "to_address",
        "body",
        "external_id",
        "contact",
        "status",
        "result",
    )
    fields = readonly_fields
