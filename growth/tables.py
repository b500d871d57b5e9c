"""Growth's console lists as django-tables2 tables (see messaging.tables): one contact's
points ledger and the ledger of the gift cards they received, on their growth summary."""

import django_tables2 as tables
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from growth.models import GiftCardTransaction, LoyaltyTransaction
from messaging.tables import ConsoleTable, LinkColumn


class LedgerTable(ConsoleTable):
    """What both ledgers show: newest first, sortable on when (indexed), kind and amount."""

    count_noun = ngettext_lazy("%(count)s entry", "%(count)s entries", "count")

    created_at = tables.DateTimeColumn(verbose_name=_("When"), short=True, order_by=("created_at", "id"))
    kind = tables.Column(verbose_name=_("Kind"), order_by=("kind", "-created_at", "-id"))
    order_reference = tables.Column(verbose_name=_("Order"), orderable=False)
    actor = tables.Column(verbose_name=_("By"), orderable=False, default="")

    def render_kind(self, record) -> str:
        return record.get_kind_display()

    def value_kind(self, record) -> str:
        return record.kind  # the code, as the API gives it


class LoyaltyLedgerTable(LedgerTable):
    export_name = "points-ledger"

    points = tables.Column(verbose_name=_("Points"), order_by=("points", "id"))
    balance_after = tables.Column(verbose_name=_("Balance after"), orderable=False)
    reason = tables.Column(verbose_name=_("Reason"), orderable=False)

    class Meta(LedgerTable.Meta):
        model = LoyaltyTransaction
        fields = ()
        sequence = ("created_at", "kind", "points", "balance_after", "order_reference", "reason", "actor")
        attrs = {**LedgerTable.Meta.attrs, "data-testid": "ledger"}
        row_attrs = {"data-testid": "ledger-row"}
        empty_text = _("No entries.")


class GiftCardLedgerTable(LedgerTable):
    export_name = "gift-card-ledger"

    card = LinkColumn(
        url_name="admin:growth_giftcard_change",
        pk_field="card_id",
        verbose_name=_("Gift card"),
        order_by=("card__last4", "-created_at", "-id"),
    )
    amount = tables.Column(verbose_name=_("Amount"), order_by=("amount", "id"))
    balance_after = tables.Column(verbose_name=_("Balance after"), orderable=False)
    currency = tables.Column(verbose_name=_("Currency"), accessor="card__currency", orderable=False)

    class Meta(LedgerTable.Meta):
        model = GiftCardTransaction
        fields = ()
        sequence = ("created_at", "card", "kind", "amount", "balance_after", "currency", "order_reference", "actor")
        attrs = {**LedgerTable.Meta.attrs, "data-testid": "gift-card-ledger"}
        row_attrs = {"data-testid": "gift-card-ledger-row"}
        empty_text = _("No entries.")
