"""`{{ amount|money }}` (settings.MAILROOM_CURRENCY) and `{{ amount|money:card.currency }}`:
the amount with its currency in the active language's format (messaging.money)."""

from django import template

from messaging.money import format_money

register = template.Library()


@register.filter
def money(amount, currency: str = "") -> str:
    if amount is None or amount == "":
        return "-"
    return format_money(amount, currency or None)
