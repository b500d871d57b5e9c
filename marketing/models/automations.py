"""Automations: a trigger, ordered steps, and one run per contact and trigger.

A run is a row the minute schedule (and a kick after each event) claims with a lease when
`next_run_at` is due; each step executes in its own transaction together with the run's
advance and its log row, so a crash between steps neither skips nor repeats one.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from marketing.models.events import Event
from marketing.models.segments import Segment
from messaging.models import Contact, OutboxMessage


class Automation(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING_APPROVAL = "pending", _("Waiting for approval")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")

    class Trigger(models.TextChoices):
        EVENT = "event", _("Event")
        SEGMENT_ENTRY = "segment_entry", _("Segment entry")
        DATE = "date", _("Date attribute")
        SCHEDULE = "schedule", _("Schedule")
        FORM_CONFIRMED = "form_confirmed", _("Form confirmed")

    class Reentry(models.TextChoices):
        ONCE = "once", _("Once per contact")
        AFTER_EXIT = "after_exit", _("Again once the previous run has ended")
        EVERY_TRIGGER = "every_trigger", _("Every trigger (runs side by side)")
        RESTART = "restart", _("Restart: a new trigger ends the running one")

    name = models.CharField(_("name"), max_length=150)
    description = models.TextField(_("description"), blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.DRAFT)
    preset = models.SlugField(_("preset"), max_length=64, blank=True)
    trigger_type = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.EVENT)
    trigger = models.JSONField(
        _("trigger settings"),
        default=dict,
        blank=True,
        help_text=_(
            'Event: {"events": ["cart_abandoned"], "filters": [{"property": "total", "op": "gte", "value": 10}]}; '
            'segment entry: {"segment": 3}; date: {"attribute": "birthday", "yearly": true, "at": "09:00", "offset_minutes": 0}; '
            'schedule: {"weekday": 0, "time": "09:00"} in the contact\'s time zone; '
            'form confirmed: {"form": "newsletter"} (a sign-up form\'s address; none: any form).'
        ),
    )
    audience = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,  # deleting it would silently widen a schedule to every contact
        related_name="automations",
        verbose_name=_("audience"),
        help_text=_("Only members of this segment enter (schedule triggers and fan-out events send to all its members)."),
    )
    exit_events = models.JSONField(
        _("exit events"),
        default=list,
        blank=True,
        help_text=_('[{"event": "order_paid"}, {"event": "appointment_cancelled", "match": "appointment_id"}]'),
    )
    reentry = models.CharField(_("re-entry"), max_length=20, choices=Reentry.choices, default=Reentry.EVERY_TRIGGER)
    is_transactional = models.BooleanField(
        _("transactional"), default=False, help_text=_("Transactional flows skip marketing consent, never suppressions.")
    )
    quiet_hours_start = models.TimeField(_("quiet hours from"), null=True, blank=True)
    quiet_hours_end = models.TimeField(_("quiet hours until"), null=True, blank=True)
    frequency_cap = models.PositiveSmallIntegerField(
        _("frequency cap"), default=0, help_text=_("At most this many marketing messages per contact per window (0: no cap).")
    )
    frequency_window_hours = models.PositiveSmallIntegerField(_("frequency window (hours)"), default=24)
    conversion_event = models.CharField(_("conversion event"), max_length=100, default="order_paid", blank=True)
    conversion_window_days = models.PositiveSmallIntegerField(_("conversion window (days)"), default=7)
    scanned_at = models.DateTimeField(_("last scan"), null=True, blank=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    # Four eyes (fan-out automations only, see marketing.automations.approval): who asked for
    # the approval (the activation or the change that withdrew it), who gave it, and when.
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("submitted by")
    )
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("approved by")
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approved_content = models.JSONField(
        _("approved content"),
        default=dict,
        blank=True,
        help_text=_("The send steps' templates as approved: {key: [[id, version, topic], …]}."),
    )
    rejection_reason = models.TextField(_("rejection reason"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("automation")
        verbose_name_plural = _("automations")
        ordering = ["name", "id"]
        permissions = [
            ("activate_automation", _("Can activate or pause an automation")),
            ("approve_automation", _("Can approve or reject an automation that reaches many contacts")),
        ]
        indexes = [models.Index(fields=["state", "trigger_type"])]

    def __str__(self) -> str:
        return self.name


class AutomationStep(models.Model):
    class Kind(models.TextChoices):
        SEND = "send", _("Send a message")
        WAIT = "wait", _("Wait")
        CONDITION = "condition", _("Condition")
        UPDATE = "update", _("Set attribute or tag")
        SUBSCRIBE = "subscribe", _("Subscribe to a topic")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribe from a topic")
        EXIT = "exit", _("Exit")

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="steps", verbose_name=_("automation"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    config = models.JSONField(_("settings"), default=dict, blank=True)

    class Meta:
        verbose_name = _("step")
        verbose_name_plural = _("steps")
        ordering = ["automation", "position", "id"]

    def __str__(self) -> str:
        return f"{self.position + 1}. {self.get_kind_display()}"


class AutomationRun(models.Model):
    """One contact's way through one automation for one trigger (event, date, occurrence)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        EXITED = "exited", _("Exited")
        FAILED = "failed", _("Failed")

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="runs", verbose_name=_("automation"))
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="automation_runs", verbose_name=_("contact"))
    trigger_key = models.CharField(_("trigger"), max_length=200)
    trigger_event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="automation_runs", verbose_name=_("trigger event")
    )
    context = models.JSONField(_("context"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    next_step_index = models.PositiveSmallIntegerField(_("next step"), default=0)
    next_run_at = models.DateTimeField(_("next run"), null=True, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    lease_owner = models.CharField(_("lease owner"), max_length=100, blank=True)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    exit_reason = models.CharField(_("exit reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("automation run")
        verbose_name_plural = _("automation runs")
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["automation", "contact", "trigger_key"], name="one_run_per_contact_and_trigger")]
        indexes = [
            models.Index(fields=["status", "next_run_at"], name="automation_run_due"),
            models.Index(fields=["contact", "status"], name="automation_run_contact"),
            # the run history lists newest first (Meta.ordering): read in index order, not sorted
            models.Index(fields=["-started_at", "-id"], name="automation_run_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.automation} · {self.contact}"


class AutomationStepLog(models.Model):
    """What happened at one step of one run (append-only)."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Message queued")
        WAITING = "waiting", _("Waiting")
        POSTPONED = "postponed", _("Postponed")
        PASSED = "passed", _("Condition met")
        BRANCHED = "branched", _("Condition not met")
        UPDATED = "updated", _("Updated")
        SKIPPED = "skipped", _("Skipped")
        EXITED = "exited", _("Exited")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(AutomationRun, on_delete=models.CASCADE, related_name="logs", verbose_name=_("run"))
    step_index = models.PositiveSmallIntegerField(_("step"))
    kind = models.CharField(_("kind"), max_length=12, choices=AutomationStep.Kind.choices)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    message = models.ForeignKey(
        OutboxMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="automation_logs", verbose_name=_("message")
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("step log")
        verbose_name_plural = _("step logs")
        ordering = ["run", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.run_id} · {self.step_index + 1} · {self.outcome}"


class PaymentWebhookEvent(models.Model):
    """A payment provider's webhook delivery, stored once: a replay finds its id and does nothing."""

    provider = models.CharField(_("provider"), max_length=20, default="stripe")
    event_id = models.CharField(_("event id"), max_length=255)
    type = models.CharField(_("type"), max_length=100)
    order_id = models.CharField(_("order id"), max_length=128, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment webhook")
        verbose_name_plural = _("payment webhooks")
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="one_payment_webhook_per_id")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id}"
