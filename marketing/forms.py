"""Console forms for campaigns: they parse input; the actions decide."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketing.models import Campaign, Segment
from messaging.models import TemplateVersion, Topic
from messaging.storable import StorableJSONFormField

VARIANT_LABELS = "ABCD"


class VersionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: TemplateVersion) -> str:
        return f"{obj.template.name} ({obj.template.locale}) · v{obj.number} · {obj.subject[:60]}"


def version_choices():
    return TemplateVersion.objects.select_related("template").order_by("template__name", "-number")


class CampaignForm(forms.Form):
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
    send_at = forms.DateTimeField(
        label=_("Date and time (UTC) or day"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for label in VARIANT_LABELS:
            self.fields[f"variant_{label}_subject"] = forms.CharField(
                label=_("Variant %(l)s subject") % {"l": label}, required=False, max_length=998
            )
            if label != "A":
                self.fields[f"variant_{label}_version"] = VersionChoice(
                    label=_("Variant %(l)s template version") % {"l": label}, queryset=version_choices(), required=False
                )

    def variant_fields(self):
        return [
            (label, self[f"variant_{label}_subject"], self[f"variant_{label}_version"] if label != "A" else None)
            for label in VARIANT_LABELS
        ]

    def clean_send_at(self):
        value = self.cleaned_data.get("send_at")
        if value is not None and timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value

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
            initial["send_at"] = timezone.localtime(campaign.send_at).strftime("%Y-%m-%dT%H:%M")
        for variant in campaign.variants.all():
            initial[f"variant_{variant.label}_subject"] = variant.subject
            if variant.label != "A":
                initial[f"variant_{variant.label}_version"] = variant.template_version_id
        return initial


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
