"""The contact page as a 360° view: language and time zone as choices, the attributes as a
key/value table and the timeline (messaging.timeline) under the form."""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from unfold.widgets import UnfoldAdminSelect2Widget, UnfoldAdminSelectWidget

from messaging.contact_fields import EDITABLE_FIELDS, known_time_zones
from messaging.models import Contact
from messaging.timeline import attribute_rows, contact_timeline, parse_page


def language_choices() -> list[tuple[str, str]]:
    return [(code, f"{name} ({code})") for code, name in settings.LANGUAGES]


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(known_time_zones())]


class ContactAdminForm(forms.ModelForm):
    """Language and time zone are picked, not typed. A value the lists do not hold (a crafted
    post) is refused with the same words messaging.contact_fields uses; `Contact.clean()` still
    normalises and checks everything else."""

    locale = forms.ChoiceField(
        label=capfirst(Contact._meta.get_field("locale").verbose_name),
        choices=language_choices,
        initial=settings.LANGUAGE_CODE,
        widget=UnfoldAdminSelectWidget,
        error_messages={"invalid_choice": _("“%(value)s” is not a supported language.")},
    )
    timezone = forms.ChoiceField(
        label=capfirst(Contact._meta.get_field("timezone").verbose_name),
        choices=time_zone_choices,
        initial="UTC",
        widget=UnfoldAdminSelect2Widget,
        help_text=_("Type to search, e.g. Paris."),
        error_messages={"invalid_choice": _("“%(value)s” is not a known time zone (e.g. Europe/Paris).")},
    )

    class Meta:
        model = Contact
        fields = EDITABLE_FIELDS  # the admin narrows it to its fieldsets

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A row stored before the lists existed keeps its value on screen (saving it then
        # names the problem) rather than silently switching to the first choice.
        for name in ("locale", "timezone"):
            current = getattr(self.instance, name, None) if self.instance.pk else None
            field = self.fields.get(name)
            if field is not None and current and current not in dict(field.choices):
                field.choices = [(current, current), *field.choices]


def _query(request: HttpRequest, **changes) -> str:
    params = {key: value for key, value in request.GET.items() if key not in ("page", "kind")}
    params.update({key: value for key, value in changes.items() if value not in ("", None, 1)})
    return "?" + urlencode(params) + "#timeline" if params else "?#timeline"


def contact_page_context(*, request: HttpRequest, contact: Contact, user: AbstractBaseUser) -> dict:
    """What the template under the form shows: attributes and one page of the timeline."""
    timeline = contact_timeline(contact=contact, user=user, page=parse_page(request.GET.get("page")), kind=request.GET.get("kind", "")[:32])
    return {
        "attribute_rows": attribute_rows(contact),
        "timeline": timeline,
        "timeline_filters": [("", _("Everything"), _query(request))]
        + [(kind, label, _query(request, kind=kind)) for kind, label in timeline.kinds],
        "timeline_newer": _query(request, kind=timeline.kind, page=timeline.page - 1) if timeline.has_previous else "",
        "timeline_older": _query(request, kind=timeline.kind, page=timeline.page + 1) if timeline.has_next else "",
    }
