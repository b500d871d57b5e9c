"""Console forms rendered by our own templates (not Unfold's change form) still need Unfold's
widgets: its look comes from the classes its widgets carry, and a plain Django widget shows
no border at all (UNFOLD-NOTES, "Lists, filters, import/export, widgets").

`UnfoldWidgetsMixin` swaps each plain widget of a form for Unfold's counterpart, keeping the
field's attributes (type="time", rows, placeholders, maxlength) and its choices. Native date
and time pickers (type="datetime-local", "date", "time") keep their type and get Unfold's
date/time classes: no admin calendar JavaScript is needed."""

from django import forms
from django.forms.widgets import Input
from unfold import widgets as unfold

TEMPORAL_TYPES = {"date", "time", "datetime-local"}


def _classes(*groups: list[str] | str) -> str:
    return " ".join(c for group in groups for c in ([group] if isinstance(group, str) else group) if c)


def unfold_widget(field: forms.Field) -> forms.Widget:
    """Unfold's widget for `field`, or its own widget when it already is one (or has no counterpart)."""
    widget = field.widget
    if type(widget).__module__.startswith("unfold.") or isinstance(widget, forms.HiddenInput):
        return widget
    attrs = dict(widget.attrs)
    extra = attrs.pop("class", "")
    if isinstance(widget, forms.CheckboxSelectMultiple):
        new = unfold.UnfoldAdminCheckboxSelectMultipleWidget(attrs=attrs)
    elif isinstance(widget, forms.RadioSelect):
        new = unfold.UnfoldAdminRadioSelectWidget(attrs=attrs)
    elif isinstance(widget, forms.SelectMultiple):
        new = unfold.UnfoldAdminSelectMultipleWidget(attrs={**attrs, "class": extra})
    elif isinstance(widget, forms.Select):
        new = unfold.UnfoldAdminSelectWidget(attrs={**attrs, "class": extra})
    elif isinstance(widget, forms.CheckboxInput):
        new = unfold.UnfoldBooleanWidget(attrs={**attrs, "class": extra}, check_test=widget.check_test)
    elif isinstance(widget, forms.Textarea):
        new = unfold.UnfoldAdminTextareaWidget(attrs={**attrs, "class": extra})
    elif isinstance(widget, Input) and widget.input_type in TEMPORAL_TYPES:
        new = type(widget)(attrs={**attrs, "type": widget.input_type, "class": _classes(unfold.DATETIME_CLASSES, extra)})
        new.format = widget.format if hasattr(widget, "format") else None
        if hasattr(widget, "supports_microseconds"):
            new.supports_microseconds = widget.supports_microseconds
    elif isinstance(widget, forms.NumberInput):
        new = unfold.UnfoldAdminIntegerFieldWidget(attrs={**attrs, "class": extra})
    elif isinstance(widget, forms.EmailInput):
        new = unfold.UnfoldAdminEmailInputWidget(attrs={**attrs, "class": extra})
    elif isinstance(widget, forms.URLInput):
        new = unfold.UnfoldAdminURLInputWidget(attrs={**attrs, "class": extra})
    elif isinstance(widget, forms.TextInput):
        new = unfold.UnfoldAdminTextInputWidget(attrs={**attrs, "class": extra})
    else:
        return widget
    new.is_localized = widget.is_localized
    new.is_required = widget.is_required
    if hasattr(widget, "choices"):
        new.choices = widget.choices
    return new


class UnfoldWidgetsMixin:
    """Give every field of the form Unfold's widget (after the form has built its fields)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.style_fields()

    def style_fields(self) -> None:
        """Also for fields a form adds after this mixin's __init__ ran."""
        for field in self.fields.values():
            field.widget = unfold_widget(field)
