"""Console forms for campaigns: they parse input; the actions decide."""

import datetime
from datetime import UTC

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.forms.models import ModelChoiceIterator
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from marketing.models import Campaign, Segment
from messaging.console_forms import UnfoldWidgetsMixin
from messaging.models import Channel, Template, TemplateVersion, Topic
from messaging.storable import StorableJSONFormField

VARIANT_LABELS = "ABCD"
INPUT_FORMAT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows
# The picker lists marketing categories first; transactional templates last.
CATEGORY_ORDER = [
    Template.Category.NEWSLETTER,
    Template.Category.PROMOTION,
    Template.Category.LIFECYCLE,
    Template.Category.TRANSACTIONAL,
]


class GroupedVersionIterator(ModelChoiceIterator):
    """Versions in one <optgroup> per template category (in CATEGORY_ORDER)."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        groups: dict[str, list] = {}
        for version in self.queryset:
            groups.setdefault(version.template.category, []).append(self.choice(version))
        for category, choices in groups.items():
            yield (Template.Category(category).label, choices)

    def __len__(self):
        return self.queryset.count() + (1 if self.field.empty_label is not None else 0)


class VersionChoice(forms.ModelChoiceField):
    """A template version, named for people: “Spring sale · EN · v3 (active)”. Never the key
    or the raw subject source ({{ … }} means nothing to a marketer)."""

    iterator = GroupedVersionIterator

    def label_from_instance(self, obj: TemplateVersion) -> str:
        template = obj.template
        parts = [template.name, template.locale.upper(), f"v{obj.number}"]
        if template.channel != Channel.EMAIL:
            parts.append(Channel(template.channel).label)
        label = " · ".join(parts)
        if template.active_version_id == obj.pk:
            label += " " + str(_("(active)"))
        return label


def version_choices():
    category_rank = Case(
        *[When(template__category=category, then=Value(rank)) for rank, category in enumerate(CATEGORY_ORDER)],
        default=Value(len(CATEGORY_ORDER)),
        output_field=IntegerField(),
    )
    return (
        TemplateVersion.objects.select_related("template")
        .filter(template__archived_at__isnull=True)  # archived: never sent again (messaging.content.retirement)
        .alias(category_rank=category_rank)
        .order_by("category_rank", "template__name", "template__locale", "-number")
    )


class ZonedDateTimeField(forms.DateTimeField):
    """A wall-clock date and time in `zone` (the marketer's), cleaned to an aware datetime.
    A time the clocks skip (the spring DST gap) is refused with a clear message; a time that
    happens twice (the autumn change) means its first occurrence."""

    def __init__(self, *, zone: datetime.tzinfo | None = None, **kwargs) -> None:
        kwargs.setdefault("input_formats", [INPUT_FORMAT, *formats.get_format("DATETIME_INPUT_FORMATS")])
        super().__init__(**kwargs)
        self.zone = zone

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime.datetime):
            naive = value
        else:
            value = str(value).strip()
            try:
                naive = parse_datetime(value)
            except ValueError:
                raise ValidationError(self.error_messages["invalid"], code="invalid") from None
            if naive is None:
                naive = forms.BaseTemporalField.to_python(self, value)
        if timezone.is_aware(naive):
            return naive
        return to_utc(naive, self.zone or timezone.get_current_timezone())


def zone_name(zone: datetime.tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


def to_utc(naive: datetime.datetime, zone: datetime.tzinfo) -> datetime.datetime:
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValidationError(
            _("%(time)s does not exist in %(zone)s: the clocks skip it (daylight saving time). Pick another time."),
            code="nonexistent_time",
            params={"time": naive.strftime("%Y-%m-%d %H:%M"), "zone": zone_name(zone)},
        )
    return first.astimezone(UTC)


class CampaignForm(UnfoldWidgetsMixin, forms.Form):
    # 1. basics
    name = forms.CharField(label=_("Name"), max_length=200)
    channel = forms.ChoiceField(label=_("Channel"), choices=Campaign.CHANNELS)
    topic = forms.ModelChoiceField(label=_("Topic"), queryset=Topic.objects.all())
    from_address = forms.CharField(label=_("Sender"), max_length=254, required=False, help_text=_("Empty: the default sender."))
    # 2. audience
    segments = forms.ModelMultipleChoiceField(label=_("Segments"), queryset=Segment.objects.all(), widget=forms.CheckboxSelectMultiple)
    excluded_segments = forms.ModelMultipleChoiceField(
        label=_("Exclude"), queryset=Segment.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    # 3. content (variant A is the campaign's own version)
    template_version = VersionChoice(label=_("Template version"), queryset=version_choices(), required=False)
    context = StorableJSONFormField(
        label=_("Merge data"),
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 3, "class": "font-mono"}),
        help_text=_('Extra template values as JSON, e.g. {"promo_code": "SPRING"} for {{ promo_code }}.'),
    )
    # 4. schedule
    send_mode = forms.ChoiceField(
        label=_("Send"), choices=Campaign.SendMode.choices, widget=forms.RadioSelect, initial=Campaign.SendMode.NOW
    )
    send_at = ZonedDateTimeField(
        label=_("Date and time"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=INPUT_FORMAT),
        help_text=_("In your time zone. For “at a time of day in each contact's time zone”, only the day counts."),
    )
    local_time = forms.TimeField(label=_("Local time"), required=False, widget=forms.TimeInput(attrs={"type": "time"}), initial="09:00")
    throttle_per_hour = forms.IntegerField(label=_("Max per hour"), required=False, min_value=1)
    quiet_hours_start = forms.TimeField(label=_("Quiet hours from"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    quiet_hours_end = forms.TimeField(label=_("Quiet hours until"), required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    # 5. A/B test
    ab_test_share = forms.IntegerField(label=_("Test share (%)"), min_value=0, max_value=90, initial=0)
    ab_wait_hours = forms.IntegerField(label=_("Wait (hours)"), min_value=0, max_value=240, initial=4)
    ab_metric = forms.ChoiceField(label=_("Winner by"), choices=Campaign.Metric.choices, initial=Campaign.Metric.OPEN)
    # 6. guardrails
    complaint_rate_limit = forms.DecimalField(label=_("Pause above complaint rate (%)"), initial="0.30", max_digits=5, decimal_places=2)
    bounce_rate_limit = forms.DecimalField(label=_("Pause above hard-bounce rate (%)"), initial="5.00", max_digits=5, decimal_places=2)
    respect_frequency_cap = forms.BooleanField(label=_("Apply the frequency cap"), required=False, initial=True)
    attribution_days = forms.IntegerField(label=_("Attribution window (days)"), min_value=1, max_value=90, initial=5)

    def __init__(self, *args, zone: datetime.tzinfo | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone or timezone.get_current_timezone()
        self.fields["send_at"].zone = self.zone
        self.fields["send_at"].label = _("Date and time (%(zone)s)") % {"zone": zone_name(self.zone)}
        for label in VARIANT_LABELS:
            self.fields[f"variant_{label}_subject"] = forms.CharField(
                label=_("Variant %(l)s subject") % {"l": label}, required=False, max_length=998
            )
            if label != "A":
                self.fields[f"variant_{label}_version"] = VersionChoice(
                    label=_("Variant %(l)s template version") % {"l": label}, queryset=version_choices(), required=False
                )
        self.style_fields()  # the variant fields came after the mixin styled the others

    def variant_fields(self):
        return [
            (label, self[f"variant_{label}_subject"], self[f"variant_{label}_version"] if label != "A" else None)
            for label in VARIANT_LABELS
        ]

    def clean(self):
        """A date in the past is an input mistake here (the draft is refused at submission
        anyway). For the per-contact local time, `send_at` keeps only the day: it is stored
        at noon UTC, so the day is the one the marketer picked whatever her time zone."""
        data = super().clean()
        send_at, mode = data.get("send_at"), data.get("send_mode")
        now = timezone.now()
        if send_at is None:
            return data
        if mode == Campaign.SendMode.LOCAL:
            day = send_at.astimezone(self.zone).date()
            if day < timezone.localdate(now, self.zone):
                self.add_error("send_at", _("This day is in the past."))
            else:
                data["send_at"] = datetime.datetime.combine(day, datetime.time(12), tzinfo=UTC)
        elif mode == Campaign.SendMode.AT and send_at < now:
            self.add_error(
                "send_at",
                _("This date and time is in the past (it is now %(now)s in %(zone)s).")
                % {"now": timezone.localtime(now, self.zone).strftime("%Y-%m-%d %H:%M"), "zone": zone_name(self.zone)},
            )
        return data

    def campaign_values(self) -> dict:
        data = dict(self.cleaned_data)
        variants = []
        for label in VARIANT_LABELS:
            subject = data.pop(f"variant_{label}_subject", "") or ""
            version = data.pop(f"variant_{label}_version", None) if label != "A" else None
            if label == "A" or subject or version:
                variants.append({"subject": subject, "template_version": version})
        # Variant A alone, with no subject of its own: no variants at all.
        data["variants"] = [] if len(variants) == 1 and not variants[0]["subject"] else variants
        data["segments"] = list(data["segments"])
        data["excluded_segments"] = list(data["excluded_segments"])
        data["context"] = data.get("context") or {}
        return data

    @classmethod
    def initial_for(cls, campaign: Campaign) -> dict:
        initial = {
            name: getattr(campaign, name)
            for name in cls.base_fields
            if hasattr(campaign, name) and name not in ("segments", "excluded_segments")
        }
        initial["segments"] = list(campaign.segments.values_list("pk", flat=True))
        initial["excluded_segments"] = list(campaign.excluded_segments.values_list("pk", flat=True))
        initial["topic"] = campaign.topic_id
        initial["template_version"] = campaign.template_version_id
        if campaign.send_at:
            initial["send_at"] = shown_send_at(campaign, timezone.get_current_timezone())
        for variant in campaign.variants.all():
            initial[f"variant_{variant.label}_subject"] = variant.subject
            if variant.label != "A":
                initial[f"variant_{variant.label}_version"] = variant.template_version_id
        return initial


def shown_send_at(campaign: Campaign, zone: datetime.tzinfo) -> str:
    """`send_at` as the wizard shows it: the wall-clock time in the marketer's zone, or for
    the per-contact local time the stored day at that local time."""
    if campaign.send_mode == Campaign.SendMode.LOCAL:
        day = campaign.send_at.astimezone(UTC).date()
        return datetime.datetime.combine(day, campaign.local_time or datetime.time(0)).strftime(INPUT_FORMAT)
    return timezone.localtime(campaign.send_at, zone).strftime(INPUT_FORMAT)


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
