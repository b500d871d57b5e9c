"""Segments: who a campaign is for."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from messaging.models import Contact


def empty_rules() -> dict:
    return {"type": "group", "op": "and", "rules": []}


class Segment(models.Model):
    """Static (members picked or uploaded) or dynamic (a rule tree).

    A dynamic segment's members are materialised by `refresh_segment`, so a campaign's
    fan-out reads `SegmentMember` rows instead of evaluating the rules again.
    """

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Dynamic (rules)")
        STATIC = "static", _("Static (picked members)")

    name = models.CharField(_("name"), max_length=150, unique=True)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    rules = models.JSONField(_("rules"), default=empty_rules, blank=True)
    member_count = models.PositiveIntegerField(_("members"), default=0)
    refreshed_at = models.DateTimeField(_("last refresh"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]
        permissions = [("refresh_segment", _("Can refresh a segment"))]

    def __str__(self) -> str:
        return self.name


class SegmentMember(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members", verbose_name=_("segment"))
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="segment_memberships", verbose_name=_("contact"))
    added_at = models.DateTimeField(_("added"))

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [models.UniqueConstraint(fields=["segment", "contact"], name="one_membership_per_segment")]

    def __str__(self) -> str:
        return f"{self.segment} · {self.contact}"
