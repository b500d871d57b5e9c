"""Campaigns: one send to an audience, with four-eyes approval, A/B variants and a report.

The state machine lives in `marketing.campaigns.states` (an explicit transition table);
every change of state is an action in `marketing.campaigns.actions`.
"""

from datetime import time
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from marketing.models.events import Order
from marketing.models.segments import Segment
from messaging.models import Channel, Contact, OutboxMessage, TemplateVersion, Topic


class Campaign(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING_APPROVAL = "pending_approval", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        SENT = "sent", _("Sent")
        REJECTED = "rejected", _("Rejected")
        CANCELLED = "cancelled", _("Cancelled")

    class SendMode(models.TextChoices):
        NOW = "now", _("As soon as it is scheduled")
        AT = "at", _("At a date and time")
        LOCAL = "local", _("At a time of day in each contact's time zone")

    class Metric(models.TextChoices):
        OPEN = "open", _("Open rate")
        CLICK = "click", _("Click rate")

    class Fanout(models.TextChoices):
        NOT_STARTED = "not_started", _("Not started")
        RUNNING = "running", _("Creating messages")
        TESTING = "testing", _("A/B test running")
        DONE = "done", _("All messages created")

    CHANNELS = [(Channel.EMAIL, Channel.EMAIL.label), (Channel.SMS, Channel.SMS.label), (Channel.WHATSAPP, Channel.WHATSAPP.label)]

    name = models.CharField(_("name"), max_length=200)
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.DRAFT, db_index=True)
    # Content
    channel = models.CharField(_("channel"), max_length=16, choices=CHANNELS, default=Channel.EMAIL)
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("topic"))
    from_address = models.CharField(_("sender"), max_length=254, blank=True, help_text=_("Empty: the default sender."))
    template_version = models.ForeignKey(
        TemplateVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("template version"),
        help_text=_("The exact version that is approved and sent (versions never change)."),
    )
    # The version of each language variant, fixed at submission (marketing.campaigns.languages):
    # {"<pinned version id>": {"<locale>": version id}}. Not editable: approval covers it.
    language_versions = models.JSONField(_("language versions"), default=dict, blank=True, editable=False)
    # Audience
    segments = models.ManyToManyField(Segment, related_name="campaigns", verbose_name=_("segments"), blank=True)
    excluded_segments = models.ManyToManyField(Segment, related_name="excluded_from", verbose_name=_("excluded segments"), blank=True)
    # Schedule
    send_mode = models.CharField(_("send"), max_length=8, choices=SendMode.choices, default=SendMode.NOW)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True, help_text=_("The date (and, unless local, the time)."))
    local_time = models.TimeField(_("local time"), null=True, blank=True, default=time(9, 0))
    throttle_per_hour = models.PositiveIntegerField(_("max per hour"), null=True, blank=True)
    quiet_hours_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_hours_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    # A/B test
    ab_test_share = models.PositiveSmallIntegerField(
        _("test share (%)"), default=0, help_text=_("With two or more variants: the share of the audience that gets the test.")
    )
    ab_wait_hours = models.PositiveSmallIntegerField(_("wait (hours)"), default=4)
    ab_metric = models.CharField(_("winner by"), max_length=8, choices=Metric.choices, default=Metric.OPEN)
    ab_test_ends_at = models.DateTimeField(_("test ends"), null=True, blank=True)
    winner = models.ForeignKey("CampaignVariant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Guardrails (rates in percent)
    complaint_rate_limit = models.DecimalField(_("pause above complaint rate (%)"), max_digits=5, decimal_places=2, default=Decimal("0.30"))
    bounce_rate_limit = models.DecimalField(_("pause above hard-bounce rate (%)"), max_digits=5, decimal_places=2, default=Decimal("5.00"))
    respect_frequency_cap = models.BooleanField(_("apply the frequency cap"), default=True)
    attribution_days = models.PositiveSmallIntegerField(_("attribution window (days)"), default=5)
    context = models.JSONField(
        _("merge data"), default=dict, blank=True, help_text=_('Extra template values, e.g. {"promo_code": "SPRING"} for {{ promo_code }}.')
    )
    # Lifecycle
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("author"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    # Who asked for the approval under review: like the author, they may not review it.
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("submitted by")
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("approved by")
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("rejected by")
    )
    rejection_reason = models.TextField(_("rejection reason"), blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    pause_reason = models.CharField(_("pause reason"), max_length=300, blank=True)
    fanout = models.CharField(_("fan-out"), max_length=16, choices=Fanout.choices, default=Fanout.NOT_STARTED)
    recipient_count = models.PositiveIntegerField(_("recipients"), default=0)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "send_at"], name="campaign_due")]
        permissions = [
            ("approve_campaign", _("Can approve or reject a campaign")),
            ("send_campaign", _("Can schedule, pause, resume or cancel a campaign")),
            ("report_campaign", _("Can view campaign reports")),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_read_only(self) -> bool:
        return self.state in (self.State.SENT, self.State.CANCELLED, self.State.SENDING, self.State.PAUSED)


class CampaignVariant(models.Model):
    """One arm of an A/B test: its own subject and/or its own pinned template version."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants", verbose_name=_("campaign"))
    label = models.CharField(_("label"), max_length=1, default="A")
    subject = models.CharField(_("subject"), max_length=998, blank=True, help_text=_("Empty: the template version's subject."))
    template_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("template version")
    )

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["campaign", "label"]
        constraints = [models.UniqueConstraint(fields=["campaign", "label"], name="one_label_per_campaign_variant")]

    def __str__(self) -> str:
        return f"{self.campaign} · {self.label}"


class CampaignRecipient(models.Model):
    """One row per contact and campaign (unique): who gets what, when, and through which message.

    An eligible recipient is written once, with the id its outbox message will have (taken
    from the outbox's own id sequence); the fan-out then creates the message under that id.
    Until it does (later in the fan-out, or after the A/B winner for a holdout) `message_id`
    names a row that does not exist yet, so the column has no database constraint: linking
    a million messages by UPDATE afterwards cost a third of the fan-out."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Included")
        HOLDOUT = "holdout", _("Waiting for the A/B winner")
        SKIPPED = "skipped", _("Skipped")

    class Skip(models.TextChoices):
        CONSENT = "consent", _("No consent")
        SUPPRESSED = "suppressed", _("Suppressed")
        ADDRESS = "address", _("No address")
        FREQUENCY = "frequency", _("Over the frequency cap")
        REMOVED = "removed", _("Removed by hand")

    # No database constraints on `campaign` and `contact`: checking them took a key-share lock
    # per row at commit, 14 s of a million-recipient fan-out. The campaign is locked while its
    # recipients are written, contacts are never deleted (only soft-deleted or erased), and
    # Django still cascades an ORM delete. `campaign` is covered by the two indexes below.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients", db_index=False, db_constraint=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="campaign_receipts", db_constraint=False)
    # No constraint either (its check fired for every row at commit, even without a variant)
    # and indexed only where set (recipient_variant): a campaign without an A/B test has none.
    variant = models.ForeignKey(
        CampaignVariant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recipients",
        db_constraint=False,
        db_index=False,
    )
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    skip_reason = models.CharField(max_length=12, choices=Skip.choices, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    message = models.OneToOneField(
        OutboxMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaign_recipient", db_constraint=False
    )

    class Meta:
        verbose_name = _("campaign recipient")
        verbose_name_plural = _("campaign recipients")
        constraints = [models.UniqueConstraint(fields=["campaign", "contact"], name="one_recipient_per_campaign")]
        indexes = [
            models.Index(fields=["campaign", "status"], name="recipient_status"),
            models.Index(fields=["variant"], name="recipient_variant", condition=models.Q(variant__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} → {self.contact}"


class FanoutChunk(models.Model):
    """A range of a campaign's recipient ids whose messages one transaction creates. The
    fan-out plans its chunks up front and workers claim undone ones (SKIP LOCKED), so several
    create messages side by side and a crash redoes only the chunk it interrupted."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="fanout_chunks")
    first_recipient = models.BigIntegerField()
    end_recipient = models.BigIntegerField(help_text="exclusive")
    done = models.BooleanField(default=False)
    # The outbox messages this chunk created, written with `done`: the fan-out's progress
    # (/metrics sums it per running campaign) without counting a million rows.
    messages = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = _("fan-out chunk")
        verbose_name_plural = _("fan-out chunks")

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.first_recipient}–{self.end_recipient}"


class CampaignConversion(models.Model):
    """An order attributed to the campaign whose click came last before it (within the window)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="conversions")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(CampaignVariant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="campaign_conversion")
    revenue = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    clicked_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")

    def __str__(self) -> str:
        return f"{self.campaign} · {self.order}"
