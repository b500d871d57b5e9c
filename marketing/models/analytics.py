"""Analytics rollups: one row per local day and dimension, recomputed by a scheduled task
(marketing.analytics.rollups) from the outbox, delivery events and orders. Pages and the
API read these rows; nothing counts raw events on a page view."""

from django.db import models
from django.utils.translation import gettext_lazy as _


def empty_hours() -> list[int]:
    return [0] * 24


class DailyStat(models.Model):
    """Counts for one (day, channel, provider, topic, campaign, automation).

    A missing dimension is "" (not NULL) so the unique constraint holds. Days are local
    dates in settings.TIME_ZONE. What lands on which day:
    - message counts (queued … cancelled): the day the message was created, by its status
      at rollup time;
    - event counts: the day the event occurred (human opens/clicks only: events flagged
      `is_automated` are proof of delivery, not engagement);
    - unique opens/clicks: the day of the message's first human open/click, so unique
      counts add up across days;
    - conversions/revenue: the day the order was placed, on the dimensions of the message
      whose click came last in the five days before it (last touch).
    """

    day = models.DateField(_("day"))
    channel = models.CharField(_("channel"), max_length=16, blank=True, default="")
    provider = models.CharField(_("provider"), max_length=100, blank=True, default="")
    topic = models.CharField(_("topic"), max_length=100, blank=True, default="")
    campaign_id = models.CharField(_("campaign"), max_length=64, blank=True, default="")
    automation_id = models.CharField(_("automation"), max_length=64, blank=True, default="")

    # messages, by the day they were created
    queued = models.PositiveIntegerField(_("enqueued"), default=0, help_text=_("Every message created that day."))
    sent = models.PositiveIntegerField(_("sent"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    suppressed = models.PositiveIntegerField(_("suppressed"), default=0)
    cancelled = models.PositiveIntegerField(_("cancelled"), default=0)
    # delivery events, by the day they occurred
    delivered = models.PositiveIntegerField(_("delivered"), default=0)
    opened_unique = models.PositiveIntegerField(_("unique opens"), default=0)
    opened_total = models.PositiveIntegerField(_("opens"), default=0)
    clicked_unique = models.PositiveIntegerField(_("unique clicks"), default=0)
    clicked_total = models.PositiveIntegerField(_("clicks"), default=0)
    bounced = models.PositiveIntegerField(_("bounced"), default=0)
    complained = models.PositiveIntegerField(_("complaints"), default=0)
    unsubscribed = models.PositiveIntegerField(_("unsubscribed"), default=0)
    replied = models.PositiveIntegerField(_("replies"), default=0)
    # human opens per local hour of the day (0–23), for the heat map
    opens_by_hour = models.JSONField(_("opens by hour"), default=empty_hours)
    # last-touch attribution
    conversions = models.PositiveIntegerField(_("conversions"), default=0)
    revenue = models.DecimalField(_("revenue"), max_digits=14, decimal_places=2, default=0)

    computed_at = models.DateTimeField(_("computed"), auto_now=True)

    class Meta:
        verbose_name = _("daily statistic")
        verbose_name_plural = _("daily statistics")
        ordering = ["-day", "channel", "provider", "topic"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "channel", "provider", "topic", "campaign_id", "automation_id"], name="dailystat_one_row_per_dimension"
            )
        ]
        indexes = [
            models.Index(fields=["day", "channel"], name="dailystat_day_channel"),
            models.Index(fields=["campaign_id", "day"], name="dailystat_campaign"),
            models.Index(fields=["automation_id", "day"], name="dailystat_automation"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.channel or '-'} {self.provider or '-'}"
