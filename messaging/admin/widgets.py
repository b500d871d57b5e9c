"""Console widgets: Unfold's, with what a screen reader needs."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminSplitDateTimeWidget


class LabelledSplitDateTimeWidget(UnfoldAdminSplitDateTimeWidget):
    """Unfold's date and time inputs, each with its own accessible name. Django's <label> has
    no `for` on a MultiWidget, so the two inputs were named by their placeholder alone (axe
    "label-title-only"). The widget is rendered by the form renderer, which does not see our
    template overrides, hence a widget rather than a template."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        for subwidget, label in zip(context["widget"]["subwidgets"], (_("Date"), _("Time")), strict=True):
            subwidget["attrs"]["aria-label"] = label
        return context
