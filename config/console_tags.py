"""Template tags of the console shell (registered in TEMPLATES' `libraries` as "console")."""

from typing import Any

from django import template

from config.console import sidebar_breadcrumbs

register = template.Library()


@register.simple_tag(takes_context=True)
def sidebar_crumbs(context: template.Context, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sidebar_breadcrumbs(getattr(context, "request", None), parts)
