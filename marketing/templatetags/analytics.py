"""Display helpers for the analytics pages."""

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def percent(ratio) -> str:
    """0.2534 → "25.3 %" (localised)."""
    try:
        return f"{number_format(float(ratio) * 100, 1)} %"
    except (TypeError, ValueError):
        return "-"
