"""Guardrails: what must be true before a campaign may be submitted or start sending, and
whether complaints or hard bounces passed the campaign's limits. Pure checks: they compute
problems and reasons and change nothing; the campaign tick (`campaigns.tick`) pauses a
campaign whose limit was passed.

The per-contact frequency cap (N marketing messages per D days, across campaigns) is an
eligibility rule: see `audience.with_eligibility`.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from marketing.campaigns.audience import count_eligibility
from marketing.campaigns.languages import variant_versions
from marketing.models import Campaign
from messaging import site
from messaging.content.rendering import check_source
from messaging.errors import InvalidInput
from messaging.models import Channel, DeliveryEvent, OutboxMessage, Suppression, TemplateVersion, Topic
from messaging.senders import sender_error

MAX_VARIANTS = 4
UNSUBSCRIBE_TAG = "unsubscribe_url"


def content_problems(*, version: TemplateVersion | None, campaign: Campaign) -> list[str]:
    """A marketing email must carry a visible unsubscribe link and the sender's postal address."""
    if version is None:
        return [_("Pick the template version to send.")]
    problems = []
    if version.template.archived_at is not None:  # never sent again (messaging.content.retirement)
        problems.append(_("Template “%(name)s” is archived: pick another, or unarchive it.") % {"name": version.template.name})
    if version.template.channel != campaign.channel:
        problems.append(
            _("Template “%(name)s” is for %(channel)s messages.") % {"name": version.template.name, "channel": version.template.channel}
        )
    if campaign.channel == Channel.EMAIL and campaign.topic.kind == Topic.Kind.MARKETING:
        body = f"{version.body}\n{version.text_body}"
        if UNSUBSCRIBE_TAG not in body:
            problems.append(
                _("Template “%(name)s” v%(n)s has no unsubscribe link ({{ unsubscribe_url }}).")
                % {"name": version.template.name, "n": version.number}
            )
        if not site.current().postal_address:
            problems.append(site.postal_address_missing())
    return problems


def variant_subject_problem(label: str, subject: str) -> str | None:
    """The same checks as a template version's subject (size, forbidden tags and names,
    syntax, naming the line), or None when the variant's own subject is fine or empty."""
    if not subject:
        return None
    try:
        check_source(subject, part="subject")
    except InvalidInput as error:
        return _("Variant %(label)s: %(error)s") % {"label": label, "error": error}
    return None


def check_variant_subjects(variants: list[tuple[str, str]]) -> None:
    """Refuse (label, subject) pairs whose subject would not render, with a field error."""
    for label, subject in variants:
        if problem := variant_subject_problem(label, subject):
            raise InvalidInput(problem, code="template_syntax", fields={"variants": [problem], f"variant_{label}_subject": [problem]})


def campaign_problems(campaign: Campaign, *, check_audience: bool = True, now=None) -> list[str]:
    """Everything that stops this campaign from being submitted, approved or started."""
    now = now or timezone.now()
    problems: list[str] = []
    if not campaign.segments.exists():
        problems.append(_("Pick at least one segment."))
    versions = [campaign.template_version] + [v.template_version for v in campaign.variants.all() if v.template_version_id]
    if campaign.template_version_id is not None:
        versions += variant_versions(campaign)  # each language variant is sent, and approved, too
    seen = set()
    for version in versions:
        if version is not None and version.pk in seen:
            continue
        seen.add(version.pk if version else None)
        problems += content_problems(version=version, campaign=campaign)
    if campaign.send_mode == Campaign.SendMode.AT:
        if campaign.send_at is None:
            problems.append(_("Pick the date and time to send."))
        elif campaign.send_at < now and campaign.state in (Campaign.State.DRAFT, Campaign.State.REJECTED, Campaign.State.PENDING_APPROVAL):
            problems.append(_("The send time is in the past."))
    if campaign.send_mode == Campaign.SendMode.LOCAL:
        if campaign.local_time is None or campaign.send_at is None:
            problems.append(_("Pick the day and the local time to send."))
        elif campaign.send_at.date() < now.date() and campaign.state in (Campaign.State.DRAFT, Campaign.State.REJECTED):
            problems.append(_("The send day is in the past."))
    if sender := sender_error(campaign.from_address):  # a row stored before senders were checked
        problems.append(sender)
    stored = list(campaign.variants.order_by("label").values_list("label", "subject"))
    problems += [problem for label, subject in stored if (problem := variant_subject_problem(label, subject))]
    variants = len(stored)
    if variants > MAX_VARIANTS:
        problems.append(_("An A/B test has at most four variants."))
    if campaign.ab_test_share:
        if variants < 2:
            problems.append(_("An A/B test needs two to four variants."))
        if not 1 <= campaign.ab_test_share <= 90:
            problems.append(_("The test share is between 1 and 90 %."))
    if check_audience and not problems and count_eligibility(campaign).eligible == 0:
        problems.append(_("Nobody in this audience can receive the campaign (empty audience)."))
    return problems


@dataclass
class Rates:
    sent: int
    complaints: int
    hard_bounces: int

    @property
    def complaint_rate(self) -> Decimal:
        return Decimal(100 * self.complaints) / self.sent if self.sent else Decimal(0)

    @property
    def bounce_rate(self) -> Decimal:
        return Decimal(100 * self.hard_bounces) / self.sent if self.sent else Decimal(0)


def delivery_rates(campaign: Campaign) -> Rates:
    messages = OutboxMessage.objects.filter(campaign_recipient__campaign=campaign)
    hard_bounced = Exists(Suppression.objects.filter(address=OuterRef("to_address"), reason=Suppression.Reason.HARD_BOUNCE))
    figures = messages.annotate(hard=hard_bounced).aggregate(
        sent=Count("id", filter=Q(status__in=[OutboxMessage.Status.SENT, OutboxMessage.Status.FAILED])),
        failed_hard=Count("id", filter=Q(status=OutboxMessage.Status.FAILED, hard=True)),
    )
    events = DeliveryEvent.objects.filter(message__in=messages.values("id")).aggregate(
        complaints=Count("message", distinct=True, filter=Q(kind=DeliveryEvent.Kind.COMPLAINED)),
        bounces=Count("message", distinct=True, filter=Q(kind=DeliveryEvent.Kind.BOUNCED)),
    )
    return Rates(sent=figures["sent"], complaints=events["complaints"], hard_bounces=max(events["bounces"], figures["failed_hard"]))


def breached_limit(campaign: Campaign, rates: Rates) -> str | None:
    """The reason to pause, or None. Judged only once enough messages went out."""
    if rates.sent < settings.MAILROOM_GUARDRAIL_MIN_SENT:
        return None
    if rates.complaint_rate > campaign.complaint_rate_limit:
        return _("complaint rate %(rate).2f %% is above %(limit)s %%") % {
            "rate": rates.complaint_rate,
            "limit": campaign.complaint_rate_limit,
        }
    if rates.bounce_rate > campaign.bounce_rate_limit:
        return _("hard-bounce rate %(rate).2f %% is above %(limit)s %%") % {"rate": rates.bounce_rate, "limit": campaign.bounce_rate_limit}
    return None
