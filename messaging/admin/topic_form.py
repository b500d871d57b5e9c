"""The topic form: its name and description in each other console language, kept in
`Topic.translations` ({"fr": {"name": …, "description": …}})."""

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from messaging.models import Topic
from messaging.storable import validate_storable

PARTS = ("name", "description")


def other_languages() -> list[tuple[str, Any]]:
    """The languages a topic can be translated into: every one but the default."""
    return [(code, name) for code, name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def _translation_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for code, language in other_languages():
        fields[f"name_{code}"] = forms.CharField(
            label=_("Name (%(language)s)") % {"language": language},
            max_length=Topic._meta.get_field("name").max_length,
            required=False,
            widget=UnfoldAdminTextInputWidget,
            validators=[validate_storable],
            help_text=_("What contacts who read this language see; empty: the name above."),
        )
        fields[f"description_{code}"] = forms.CharField(
            label=_("Description (%(language)s)") % {"language": language},
            required=False,
            widget=UnfoldAdminTextareaWidget(attrs={"rows": 2}),
            validators=[validate_storable],
        )
    return fields


class TopicForm(forms.ModelForm):
    class Meta:
        model = Topic
        fields = ("key", "name", "description", "kind", "time_sensitive", "position")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        saved = self.instance.translations if isinstance(self.instance.translations, dict) else {}
        for code, _language in other_languages():
            entry = saved.get(code) if isinstance(saved.get(code), dict) else {}
            for part in PARTS:
                if f"{part}_{code}" in self.fields:
                    self.initial.setdefault(f"{part}_{code}", entry.get(part, ""))

    @staticmethod
    def translation_field_names() -> list[str]:
        return [f"{part}_{code}" for code, _language in other_languages() for part in PARTS]

    @property
    def changed_data(self) -> list[str]:
        changed = list(super().changed_data)
        if any(name in changed for name in self.translation_field_names()):
            changed.append("translations")  # so the audit entry carries the before/after
        return changed

    def save(self, commit: bool = True) -> Topic:
        translations = {}
        for code, _language in other_languages():
            entry = {part: (self.cleaned_data.get(f"{part}_{code}") or "").strip() for part in PARTS}
            if any(entry.values()):
                translations[code] = {part: value for part, value in entry.items() if value}
        self.instance.translations = translations
        return super().save(commit=commit)


# Declared on the class (not per instance) so the admin's fieldsets list and render them.
TopicForm.base_fields.update(_translation_fields())
TopicForm.declared_fields.update(_translation_fields())
