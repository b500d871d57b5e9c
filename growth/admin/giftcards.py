"""Gift cards in the console: issue (one or a batch, codes shown once), redeem at the till
with the code the customer gives (typed, never shown back), disable with a reason,
read-only ledger."""

from datetime import datetime, time
from uuid import uuid4

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter
from unfold.decorators import action
from unfold.widgets import (
    UnfoldAdminDecimalFieldWidget,
    UnfoldAdminIntegerFieldWidget,
    UnfoldAdminSingleDateWidget,
    UnfoldAdminTextInputWidget,
)

from growth import policies
from growth.admin.common import ReasonDialogForm, run_action, summary_link
from growth.giftcards import disable_gift_card, issue_gift_card, issue_gift_cards, redeem_gift_card
from growth.models import GiftCard, GiftCardTransaction
from messaging.admin.base import ReadOnlyAdmin, ReadOnlyInline
from messaging.delivery.throttle import client_address
from messaging.errors import MailroomError
from messaging.models import Contact
from messaging.money import format_money


class GiftCardLedgerInline(ReadOnlyInline):
    model = GiftCardTransaction
    fields = ("created_at", "kind", "amount", "balance_after", "order_reference", "actor")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    verbose_name_plural = _("ledger")


class IssueForm(forms.Form):
    count = forms.IntegerField(label=_("How many cards"), min_value=1, max_value=1000, initial=1, widget=UnfoldAdminIntegerFieldWidget)
    amount = forms.DecimalField(label=_("Amount"), min_value=0.01, max_digits=9, decimal_places=2, widget=UnfoldAdminDecimalFieldWidget)
    currency = forms.CharField(label=_("Currency"), max_length=3, initial="EUR", widget=UnfoldAdminTextInputWidget)
    expires_on = forms.DateField(label=_("Expires on"), required=False, widget=UnfoldAdminSingleDateWidget)
    recipient_email = forms.EmailField(
        label=_("Send to contact"),
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text=_("One card only: emails it to this contact."),
    )
    sender_name = forms.CharField(label=_("From"), max_length=120, required=False, widget=UnfoldAdminTextInputWidget)
    message = forms.CharField(label=_("Message"), max_length=500, required=False, widget=UnfoldAdminTextInputWidget)
    batch = forms.CharField(label=_("Batch label"), max_length=64, required=False, widget=UnfoldAdminTextInputWidget)
    # One per rendered form: submitting it again (a reload, a double click) replays the
    # first issue, without the codes, instead of issuing more cards.
    submission = forms.CharField(max_length=64, required=False, initial=lambda: uuid4().hex, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("recipient_email") and data.get("count", 1) > 1:
            raise forms.ValidationError(_("A card sent to a contact is issued one at a time."))
        if data.get("recipient_email"):
            contact = Contact.objects.active().filter(email=data["recipient_email"].strip().lower()).first()
            if contact is None:
                self.add_error("recipient_email", _("No contact has this email address."))
            data["recipient"] = contact
        return data


class WriteOnlyTextInput(UnfoldAdminTextInputWidget):
    """A text field that never renders its value back: a gift-card code typed at the till is
    not echoed into the page when the form comes back with an error (README, Security: a
    code is readable only by its owner)."""

    def get_context(self, name, value, attrs):
        return super().get_context(name, None, attrs)


class RedeemForm(forms.Form):
    code = forms.CharField(
        label=_("Gift-card code"),
        max_length=40,
        strip=True,
        widget=WriteOnlyTextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}),
        help_text=_("As the customer gives it. It is never shown back, and wrong codes lock you out for a while."),
    )
    amount = forms.DecimalField(
        label=_("Amount"), min_value=0.01, max_digits=9, decimal_places=2, localize=True, widget=UnfoldAdminDecimalFieldWidget
    )
    currency = forms.CharField(
        label=_("Currency"), min_length=3, max_length=3, initial=lambda: settings.MAILROOM_CURRENCY, widget=UnfoldAdminTextInputWidget
    )
    order_reference = forms.CharField(label=_("Order reference"), max_length=128, required=False, widget=UnfoldAdminTextInputWidget)
    # One per rendered form, the redemption's idempotency key: submitting it twice (a
    # reload, a double click) replays the first redemption instead of charging again.
    submission = forms.CharField(max_length=64, initial=lambda: uuid4().hex, widget=forms.HiddenInput)


@admin.register(GiftCard)
class GiftCardAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "balance_money", "initial_money", "expires_at", "disabled_at", "recipient", "batch", "created_at")
    list_filter = (
        ("currency", admin.AllValuesFieldListFilter),
        "disabled_at",
        ("expires_at", RangeDateFilter),
        ("created_at", RangeDateFilter),
    )
    list_filter_submit = True
    search_fields = ("last4", "batch", "recipient__email")
    list_select_related = ("recipient",)
    show_full_result_count = False
    fields = (
        "last4",
        "balance",
        "initial_amount",
        "currency",
        "expires_at",
        "disabled_at",
        "disabled_reason",
        "recipient_summary",
        "sender_name",
        "message",
        "batch",
        "issued_by",
        "created_at",
    )
    readonly_fields = fields
    inlines = [GiftCardLedgerInline]
    actions_list = ["issue", "redeem"]
    actions_detail = ["disable"]

    @admin.display(description=_("balance"), ordering="balance")
    def balance_money(self, obj: GiftCard) -> str:
        return format_money(obj.balance, obj.currency)

    @admin.display(description=_("initial amount"), ordering="initial_amount")
    def initial_money(self, obj: GiftCard) -> str:
        return format_money(obj.initial_amount, obj.currency)

    @admin.display(description=_("recipient"))
    def recipient_summary(self, obj: GiftCard) -> str:
        return summary_link(obj.recipient)

    def has_issue_permission(self, request: HttpRequest) -> bool:
        return policies.can_issue_gift_cards(request.user)

    def has_disable_permission(self, request: HttpRequest, object_id=None) -> bool:
        return policies.can_disable_gift_cards(request.user)

    def has_redeem_permission(self, request: HttpRequest) -> bool:
        return policies.can_redeem_gift_cards(request.user)

    @action(description=_("Redeem a gift card"), icon="redeem", permissions=["redeem"])
    def redeem(self, request: HttpRequest) -> HttpResponse:
        """Spend part of a card at the till: the code the customer gives, typed by staff. The
        redemption action holds every rule (balance, expiry, currency, locks per card and per
        person); this page only asks and answers."""
        request.sensitive_post_parameters = ["code"]  # never in an error report
        form = RedeemForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "title": _("Redeem a gift card"), "form": form, "opts": self.model._meta}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                entry = redeem_gift_card(
                    code=data["code"],
                    amount=data["amount"],
                    currency=data["currency"],
                    idempotency_key=f"console:redeem:{data['submission']}",
                    order_reference=data["order_reference"],
                    actor=request.user,
                    ip_address=client_address(request),
                )
            except MailroomError as error:
                form.add_error(None, str(error))
            else:
                card = entry.card
                messages.success(
                    request,
                    _("Redeemed %(amount)s from gift card •••• %(last4)s; %(balance)s left.")
                    % {
                        "amount": format_money(-entry.amount, card.currency),
                        "last4": card.last4,
                        "balance": format_money(entry.balance_after, card.currency),
                    },
                )
                return redirect("admin:growth_giftcard_change", card.pk)
        response = TemplateResponse(
            request, "console/growth/gift_card_redeem.html", context, status=400 if request.method == "POST" else 200
        )
        response["Cache-Control"] = "no-store"
        return response

    @action(description=_("Issue gift cards"), icon="add_card", permissions=["issue"])
    def issue(self, request: HttpRequest) -> HttpResponse:
        form = IssueForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "title": _("Issue gift cards"), "form": form, "opts": self.model._meta}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            key = f"console:{data['submission']}" if data["submission"] else None
            expires_at = None
            if data["expires_on"]:
                expires_at = timezone.make_aware(datetime.combine(data["expires_on"], time.max))
            try:
                if data["count"] == 1:
                    issued = [
                        issue_gift_card(
                            actor=request.user,
                            amount=data["amount"],
                            currency=data["currency"],
                            expires_at=expires_at,
                            recipient=data.get("recipient"),
                            sender_name=data["sender_name"],
                            message=data["message"],
                            idempotency_key=key,
                        )
                    ]
                else:
                    issued = issue_gift_cards(
                        actor=request.user,
                        count=data["count"],
                        amount=data["amount"],
                        currency=data["currency"],
                        expires_at=expires_at,
                        batch=data["batch"],
                        idempotency_key=key,
                    )
            except MailroomError as error:
                form.add_error(None, str(error))
            else:
                # The only time these codes are shown: the page is never cached.
                response = TemplateResponse(request, "console/growth/gift_cards_issued.html", context | {"issued": issued})
                response["Cache-Control"] = "no-store"
                return response
        return TemplateResponse(request, "console/growth/gift_cards_issue.html", context, status=400 if request.method == "POST" else 200)

    @action(
        description=_("Disable"),
        icon="block",
        permissions=["disable"],
        dialog={
            "title": _("Disable this gift card?"),
            "description": _("It can no longer be redeemed. The card and its ledger are kept."),
            "form_class": ReasonDialogForm,
            "form_submit_text": _("Disable"),
        },
    )
    def disable(self, request: HttpRequest, form: ReasonDialogForm, object_id: str) -> HttpResponse:
        card = get_object_or_404(GiftCard, pk=object_id)
        return run_action(
            request,
            lambda: disable_gift_card(card=card, reason=form.cleaned_data["reason"], actor=request.user),
            success=_("Gift card disabled."),
            url=reverse("admin:growth_giftcard_change", args=[card.pk]),
        )


@admin.register(GiftCardTransaction)
class GiftCardTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "card", "kind", "amount", "balance_after", "order_reference", "actor")
    list_filter = (("kind", ChoicesDropdownFilter), ("created_at", RangeDateFilter))
    list_filter_submit = True
    search_fields = ("card__last4", "order_reference", "idempotency_key")
    list_select_related = ("card", "actor")
    show_full_result_count = False
