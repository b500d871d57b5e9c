"""Campaign actions: every change of a campaign goes through one of these.

Each is keyword-only, takes the `actor` (None for the system), runs in one transaction,
locks the campaign row before checking its state, checks the transition table
(`states.TRANSITIONS`), writes the audit entry and schedules side effects after commit.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from marketing.campaigns.guardrails import (
    MAX_VARIANTS,
    campaign_problems,
    check_variant_subjects,
    content_problems,
    variant_subject_problem,
)
from marketing.campaigns.languages import pin_languages, variant_versions
from marketing.campaigns.notifications import notify_approvers, notify_author
from marketing.campaigns.states import (
    NEEDS_NEW_APPROVAL,
    CampaignStateError,
    FourEyesViolation,
    authors,
    can_edit,
    can_remove_recipients,
    can_reschedule,
    can_resume,
    check_transition,
)
from marketing.models import Campaign, CampaignRecipient, CampaignVariant, Segment
from marketing.review import saw_this_submission
from marketing.webhook_events import CAMPAIGN_STATE_CHANGED
from messaging.audit import current_actor, record_audit, snapshot
from messaging.content.merge_tags import merge_tags
from messaging.delivery.outbox import cancel_message
from messaging.delivery.work import after_commit
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import OutboxMessage, Topic
from messaging.senders import clean_sender, sender_error
from messaging.storable import UnstorableValue, check_storable
from messaging.webhooks.emit import emit

State = Campaign.State
# Queued messages of a paused campaign wait until this instant: the drain only claims
# messages whose next_attempt_at has come, so holding them costs one UPDATE and no change
# to the delivery engine. Resuming puts back each message's own scheduled time.

SCALAR_FIELDS = (
    "name",
    "channel",
    "topic",
    "from_address",
    "template_version",
    "send_mode",
    "send_at",
    "local_time",
    "throttle_per_hour",
    "quiet_hours_start",
    "quiet_hours_end",
    "ab_test_share",
    "ab_wait_hours",
    "ab_metric",
    "complaint_rate_limit",
    "bounce_rate_limit",
    "respect_frequency_cap",
    "attribution_days",
    "context",
)
# What a second person approves (invariant 9): audience, content, merge data, sender,
# schedule and guardrails. Changing any of them after submission returns the campaign to
# draft (`withdraw_approval`); only the internal name and the attribution window (a
# reporting setting) are outside the approval.
APPROVED_FIELDS = frozenset(SCALAR_FIELDS) - {"name", "attribution_days"}
APPROVED_RELATIONS = frozenset({"segments", "excluded_segments", "variants"})


def hold_until() -> datetime:
    return datetime(2999, 1, 1, tzinfo=UTC)


def _lock(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update(of=("self",)).select_related("topic", "template_version__template").get(pk=campaign.pk)


def _user(actor: AbstractBaseUser | None):
    return actor if actor is not None and actor.is_authenticated else None


def _audit_state(actor, campaign: Campaign, verb: str, before: str, **extra: Any) -> None:
    """Every state change passes here: the audit row, and the webhook event after commit."""
    record_audit(actor=actor, verb=verb, target=campaign, changes={"state": {"before": before, "after": campaign.state}, **extra})
    emit(CAMPAIGN_STATE_CHANGED, {"campaign_id": campaign.pk, "name": campaign.name, "before": before, "after": campaign.state})


def _clean_values(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(SCALAR_FIELDS) - {"segments", "excluded_segments", "variants"}
    if unknown:
        raise InvalidInput(_("Unknown campaign field(s): %(names)s") % {"names": ", ".join(sorted(unknown))})
    if "name" in values and not (values["name"] or "").strip():
        raise InvalidInput(_("A campaign needs a name."), fields={"name": [_("This field is required.")]})
    if "channel" in values and values["channel"] not in dict(Campaign.CHANNELS):
        raise InvalidInput(_("Campaigns send email, SMS or WhatsApp."), fields={"channel": [_("Unknown channel.")]})
    if values.get("send_mode") is not None and values["send_mode"] not in Campaign.SendMode.values:
        raise InvalidInput(_("Unknown send mode."), fields={"send_mode": [_("Unknown send mode.")]})
    if values.get("throttle_per_hour") is not None and values["throttle_per_hour"] < 1:
        raise InvalidInput(_("The hourly limit must be at least 1."), fields={"throttle_per_hour": [_("At least 1.")]})
    if values.get("ab_test_share") is not None and not 0 <= values["ab_test_share"] <= 90:
        raise InvalidInput(_("The test share is between 0 and 90 %."), fields={"ab_test_share": [_("Between 0 and 90.")]})
    if "context" in values:
        values["context"] = clean_merge_data(values["context"])
    if "from_address" in values:
        values["from_address"] = clean_sender(values["from_address"])
    if "variants" in values and len(values["variants"]) > MAX_VARIANTS:
        raise InvalidInput(_("An A/B test has at most four variants."), fields={"variants": [_("At most four.")]})
    if "variants" in values:
        check_variant_subjects([(label, spec.get("subject") or "") for label, spec in zip("ABCD", values["variants"], strict=False)])
    return values


MERGE_DATA_MAX_CHARS = 10_000
MERGE_DATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def clean_merge_data(value: Any) -> dict:
    """A campaign's extra template values: an object of names a template can print
    ({{ promo_code }}), small, and never one of the names the product fills in itself."""
    value = {} if value in (None, "") else value
    error = None
    reserved = {tag.name.split(".")[0] for tag in merge_tags()}
    try:
        check_storable(value)
    except UnstorableValue as unstorable:
        raise InvalidInput(unstorable.message, fields={"context": [unstorable.message]}) from None
    if not isinstance(value, dict):
        error = _('The merge data is an object of names and values, e.g. {"promo_code": "SPRING"}.')
    elif bad := sorted(name for name in value if not MERGE_DATA_NAME.match(str(name))):
        error = _("“%(name)s” is not a name a template can use (letters, digits and _).") % {"name": bad[0]}
    elif taken := sorted(name for name in value if name in reserved):
        error = _("“%(name)s” is filled in by Mailroom itself; pick another name.") % {"name": taken[0]}
    elif len(json.dumps(value, default=str)) > MERGE_DATA_MAX_CHARS:
        error = _("The merge data is limited to %(n)s characters.") % {"n": MERGE_DATA_MAX_CHARS}
    if error:
        raise InvalidInput(error, fields={"context": [error]})
    return json.loads(json.dumps(value, default=str))


def _set_variants(campaign: Campaign, variants: list[dict[str, Any]]) -> list[dict]:
    """Replace the variants: [{"subject": "...", "template_version": TemplateVersion|None}, …] labelled A, B, C, D."""
    before = [
        {"label": v.label, "subject": v.subject, "template_version": v.template_version_id} for v in campaign.variants.order_by("label")
    ]
    campaign.variants.all().delete()
    for label, spec in zip("ABCD", variants, strict=False):
        version = spec.get("template_version")
        CampaignVariant.objects.create(campaign=campaign, label=label, subject=spec.get("subject") or "", template_version=version)
    after = [
        {"label": v.label, "subject": v.subject, "template_version": v.template_version_id} for v in campaign.variants.order_by("label")
    ]
    return [] if before == after else [before, after]


@transaction.atomic
def create_campaign(*, actor: AbstractBaseUser, name: str, topic: Topic, **values: Any) -> Campaign:
    """A new draft. Incomplete is fine; `submit_campaign` checks that it can be sent."""
    segments = values.pop("segments", [])
    excluded = values.pop("excluded_segments", [])
    variants = values.pop("variants", None)
    _clean_values({"name": name, **values, **({"variants": variants} if variants is not None else {})})
    campaign = Campaign.objects.create(name=name.strip(), topic=topic, created_by=actor, **values)
    campaign.segments.set(segments)
    campaign.excluded_segments.set(excluded)
    if variants:
        _set_variants(campaign, variants)
    record_audit(actor=actor, verb="created", target=campaign, changes={"state": {"before": None, "after": campaign.state}})
    return campaign


@transaction.atomic
def update_campaign(*, actor: AbstractBaseUser, campaign: Campaign, **values: Any) -> Campaign:
    """Edit a campaign. A sent (or sending, paused, cancelled) campaign is read-only; editing
    content, audience or schedule of a submitted or approved one sends it back to draft."""
    campaign = _lock(campaign)
    _clean_values(values)
    if not can_edit(campaign):
        if campaign.state == State.SENT:
            raise CampaignStateError(_("A sent campaign is read-only."))
        raise CampaignStateError(
            _("A campaign that is %(state)s cannot be edited.") % {"state": Campaign.State(campaign.state).label.lower()}
        )
    scalars = {k: v for k, v in values.items() if k in SCALAR_FIELDS}
    before = snapshot(campaign, list(scalars))
    for name, value in scalars.items():
        setattr(campaign, name, value)
    changes = {
        name: {"before": before[name], "after": after} for name, after in snapshot(campaign, list(scalars)).items() if before[name] != after
    }
    for relation in ("segments", "excluded_segments"):
        if relation in values:
            old = sorted(getattr(campaign, relation).values_list("pk", flat=True))
            new = sorted(s.pk if isinstance(s, Segment) else int(s) for s in values[relation])
            if old != new:
                getattr(campaign, relation).set(new)
                changes[relation] = {"before": old, "after": new}
    if "variants" in values and (variant_change := _set_variants(campaign, values["variants"])):
        changes["variants"] = {"before": variant_change[0], "after": variant_change[1]}
    if not changes:
        return campaign
    campaign.save()
    record_audit(actor=actor, verb="changed", target=campaign, changes=changes)
    if campaign.state == State.REJECTED:
        _back_to_draft(actor, campaign, reason=_("edited after rejection"))
    elif approved := sorted(set(changes) & (APPROVED_FIELDS | APPROVED_RELATIONS)):
        withdraw_approval(actor=actor, campaign=campaign, reason=_("edited after submission: %(fields)s") % {"fields": ", ".join(approved)})
    return campaign


def withdraw_approval(*, actor: AbstractBaseUser | None, campaign: Campaign, reason: str) -> bool:
    """Invariant 9, the one rule: something a second person approved (or is reviewing)
    changed, so a submitted, approved or scheduled campaign goes back to draft, with the
    reason audited. The caller holds the campaign's row lock. Returns whether it did."""
    if campaign.state not in NEEDS_NEW_APPROVAL:
        return False
    _back_to_draft(actor, campaign, reason=reason)
    return True


def on_segment_audience_changing(sender, *, segment: Segment, actor: AbstractBaseUser | None, change: str, **kwargs) -> None:
    """The `marketing.segments.signals.segment_audience_changing` receiver (connected in
    `marketing.wiring`); runs in the segment edit's transaction, before the change."""
    withdraw_approvals_for_segment(actor=actor, segment=segment, change=change)


def withdraw_approvals_for_segment(*, actor: AbstractBaseUser | None, segment: Segment, change: str) -> list[Campaign]:
    """A segment's rules or members changed (or it is being deleted): every submitted,
    approved or scheduled campaign that sends to it or excludes it goes back to draft.
    Refused while a campaign using it is sending but has not fixed its recipients yet (the
    fan-out reads the audience when it starts), so no change slips into a send in flight.
    Called by the segment actions inside their transaction, before they change anything."""
    using = Campaign.objects.filter(Q(segments=segment) | Q(excluded_segments=segment)).distinct().order_by("pk")
    unfixed = using.filter(state__in=[State.SENDING, State.PAUSED], fanout=Campaign.Fanout.NOT_STARTED).first()
    if unfixed is not None:
        raise CampaignStateError(
            _("Campaign “%(name)s” is about to send to this segment: change it once its recipients are recorded, or cancel it.")
            % {"name": unfixed.name}
        )
    withdrawn = []
    for campaign in Campaign.objects.select_for_update(of=("self",)).filter(pk__in=using.filter(state__in=NEEDS_NEW_APPROVAL).values("pk")):
        reason = _("segment “%(segment)s” changed: %(change)s") % {"segment": segment.name, "change": change}
        if withdraw_approval(actor=actor, campaign=campaign, reason=reason):
            withdrawn.append(campaign)
    return withdrawn


# A topic's kind decides whether consent is checked, `time_sensitive` whether the frequency
# cap applies: both are part of what was approved for the campaigns sending on it.
APPROVED_TOPIC_FIELDS = ("kind", "time_sensitive")


def withdraw_approvals_for_topic(*, actor: AbstractBaseUser | None, topic: Topic, change: str) -> list[Campaign]:
    """A topic's kind or time-sensitivity changed: every submitted, approved or scheduled
    campaign on it goes back to draft (a marketing topic made transactional would send
    to contacts who never consented). Called inside the transaction that saves the topic."""
    withdrawn = []
    using = Campaign.objects.filter(topic=topic, state__in=NEEDS_NEW_APPROVAL).values("pk")
    for campaign in Campaign.objects.select_for_update(of=("self",)).filter(pk__in=using).order_by("pk"):
        reason = _("topic “%(topic)s” changed: %(change)s") % {"topic": topic.name, "change": change}
        if withdraw_approval(actor=actor, campaign=campaign, reason=reason):
            withdrawn.append(campaign)
    return withdrawn


def topic_saving(sender, instance: Topic, raw: bool = False, **kwargs: Any) -> None:
    """pre_save receiver for messaging's Topic (which cannot call up into marketing)."""
    if raw or instance.pk is None:
        return
    before = Topic.objects.filter(pk=instance.pk).values(*APPROVED_TOPIC_FIELDS).first()
    changed = [name for name in APPROVED_TOPIC_FIELDS if before is not None and before[name] != getattr(instance, name)]
    if changed:
        withdraw_approvals_for_topic(actor=current_actor(), topic=instance, change=", ".join(changed))


def _back_to_draft(actor, campaign: Campaign, *, reason: str) -> None:
    before = campaign.state
    check_transition(campaign, State.DRAFT)
    campaign.state = State.DRAFT
    campaign.approved_by = campaign.approved_at = campaign.submitted_at = campaign.submitted_by = None
    campaign.save(update_fields=["state", "approved_by", "approved_at", "submitted_at", "submitted_by", "updated_at"])
    _audit_state(actor, campaign, "returned to draft", before, reason=reason)


@transaction.atomic
def reopen_campaign(*, actor: AbstractBaseUser, campaign: Campaign) -> Campaign:
    """A rejected (or submitted, approved, scheduled) campaign back to draft, to be edited."""
    campaign = _lock(campaign)
    _back_to_draft(actor, campaign, reason=_("reopened"))
    return campaign


@transaction.atomic
def submit_campaign(*, actor: AbstractBaseUser, campaign: Campaign) -> Campaign:
    """Ask for approval. Refused while anything would stop it from sending (empty audience,
    past send time, missing template version, a template without unsubscribe link…)."""
    campaign = _lock(campaign)
    check_transition(campaign, State.PENDING_APPROVAL)
    if problems := campaign_problems(campaign):
        raise InvalidInput(" ".join(problems), code="campaign_incomplete", fields={"__all__": problems})
    before = campaign.state
    campaign.state, campaign.submitted_at, campaign.submitted_by = State.PENDING_APPROVAL, timezone.now(), _user(actor)
    campaign.rejection_reason = ""
    # What the approver reviews and what is sent: the version of each language, fixed now.
    campaign.language_versions = pin_languages(campaign)
    campaign.save(update_fields=["state", "submitted_at", "submitted_by", "rejection_reason", "language_versions", "updated_at"])
    _audit_state(actor, campaign, "submitted", before)
    notify_approvers(campaign=campaign)
    return campaign


@transaction.atomic
def approve_campaign(*, actor: AbstractBaseUser, campaign: Campaign, seen=None) -> Campaign:
    """Approve a campaign waiting for review. The author may never approve their own.
    `seen` names the submission the approver looked at (marketing.review): a campaign
    changed and submitted again since then is not approved by that look."""
    campaign = _lock(campaign)
    if campaign.state != State.PENDING_APPROVAL:
        raise CampaignStateError(_("Only a campaign waiting for approval can be approved."))
    if campaign.created_by_id == actor.pk:
        raise FourEyesViolation(_("You cannot approve a campaign you wrote."))
    if actor.pk in authors(campaign):
        raise FourEyesViolation(_("You cannot approve a campaign you submitted: someone else must."))
    if not saw_this_submission(campaign.submitted_at, seen):
        raise CampaignStateError(_("This campaign changed after you opened it: review it again before approving."))
    before = campaign.state
    campaign.state, campaign.approved_by, campaign.approved_at = State.APPROVED, actor, timezone.now()
    campaign.save(update_fields=["state", "approved_by", "approved_at", "updated_at"])
    _audit_state(actor, campaign, "approved", before)
    notify_author(campaign=campaign, subject=_("Approved: {{ name }}"), text=_("{{ approver }} approved your campaign “{{ name }}”."))
    return campaign


@transaction.atomic
def reject_campaign(*, actor: AbstractBaseUser, campaign: Campaign, reason: str) -> Campaign:
    """Send a campaign back to its author with a reason; editing it makes it a draft again."""
    campaign = _lock(campaign)
    if campaign.state != State.PENDING_APPROVAL:
        raise CampaignStateError(_("Only a campaign waiting for approval can be rejected."))
    if actor.pk in authors(campaign):
        raise FourEyesViolation(_("You cannot review a campaign you wrote or submitted."))
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("Say why the campaign is rejected."), fields={"reason": [_("This field is required.")]})
    before = campaign.state
    campaign.state, campaign.rejected_by, campaign.rejection_reason = State.REJECTED, actor, reason[:2000]
    campaign.save(update_fields=["state", "rejected_by", "rejection_reason", "updated_at"])
    _audit_state(actor, campaign, "rejected", before, reason=reason[:2000])
    notify_author(
        campaign=campaign,
        subject=_("Rejected: {{ name }}"),
        text=_("{{ approver }} rejected your campaign “{{ name }}”: {{ reason }}"),
        extra={"reason": reason},
    )
    return campaign


@transaction.atomic
def schedule_campaign(*, actor: AbstractBaseUser, campaign: Campaign) -> Campaign:
    """An approved campaign gets its place in the calendar; the minute tick starts it when due."""
    campaign = _lock(campaign)
    if campaign.state == State.DRAFT or campaign.state == State.PENDING_APPROVAL:
        raise CampaignStateError(_("A campaign must be approved before it is scheduled."))
    check_transition(campaign, State.SCHEDULED)
    now = timezone.now()
    if campaign.send_mode == Campaign.SendMode.NOW:
        campaign.send_at = now
    elif campaign.send_mode == Campaign.SendMode.AT and (campaign.send_at is None or campaign.send_at < now - timedelta(minutes=1)):
        raise InvalidInput(_("The send time is in the past: edit it (the campaign then needs a new approval)."), code="past_send_time")
    elif campaign.send_mode == Campaign.SendMode.LOCAL and (campaign.send_at is None or campaign.send_at.date() < now.date()):
        raise InvalidInput(_("The send day is in the past."), code="past_send_time")
    before = campaign.state
    campaign.state = State.SCHEDULED
    campaign.save(update_fields=["state", "send_at", "updated_at"])
    _audit_state(actor, campaign, "scheduled", before, send_at={"before": None, "after": campaign.send_at.isoformat()})
    if campaign.send_mode == Campaign.SendMode.NOW:
        after_commit("marketing.tasks.run_campaigns", coalesce=False)
    return campaign


@transaction.atomic
def reschedule_campaign(*, actor: AbstractBaseUser, campaign: Campaign, send_at: datetime) -> Campaign:
    """Move a scheduled campaign to another time (the calendar's drag and drop). The schedule
    is part of what was approved, so the moved campaign goes back to draft and needs a new
    approval (invariant 9), like any other edit of its send time."""
    campaign = _lock(campaign)
    if not can_reschedule(campaign):
        raise CampaignStateError(
            _("Only a scheduled campaign can be moved (this one is %(state)s).") % {"state": Campaign.State(campaign.state).label.lower()}
        )
    if send_at < timezone.now():
        raise InvalidInput(_("The new send time is in the past."), code="past_send_time")
    before = campaign.send_at
    campaign.send_at = send_at
    if campaign.send_mode == Campaign.SendMode.NOW:
        campaign.send_mode = Campaign.SendMode.AT
    campaign.save(update_fields=["send_at", "send_mode", "updated_at"])
    record_audit(
        actor=actor,
        verb="rescheduled",
        target=campaign,
        changes={"send_at": {"before": before.isoformat() if before else None, "after": send_at.isoformat()}},
    )
    withdraw_approval(actor=actor, campaign=campaign, reason=_("moved in the calendar"))
    return campaign


@transaction.atomic
def start_campaign(*, actor: AbstractBaseUser | None, campaign: Campaign) -> Campaign:
    """Scheduled → sending, then the fan-out runs after commit. Sending is blocked (and the
    campaign goes back to draft, its author told) when a guardrail on the content fails."""
    campaign = _lock(campaign)
    check_transition(campaign, State.SENDING)
    if campaign.state != State.SCHEDULED:
        raise CampaignStateError(_("Only a scheduled campaign can start."))
    versions = [campaign.template_version] + [
        v.template_version for v in campaign.variants.select_related("template_version__template") if v.template_version_id
    ]
    versions += variant_versions(campaign)  # the pinned language variants are sent too
    problems = [p for version in versions for p in content_problems(version=version, campaign=campaign)]
    problems += [
        p for label, subject in campaign.variants.values_list("label", "subject") if (p := variant_subject_problem(label, subject))
    ]
    if sender := sender_error(campaign.from_address):  # a row stored before senders were checked
        problems.append(sender)
    if problems:
        _back_to_draft(actor, campaign, reason=_("sending blocked: %(problems)s") % {"problems": " ".join(problems)})
        notify_author(
            campaign=campaign,
            subject=_("Blocked: {{ name }}"),
            text=_("“{{ name }}” was not sent: {{ reason }}"),
            extra={"reason": " ".join(problems)},
        )
        return campaign
    before = campaign.state
    campaign.state, campaign.started_at = State.SENDING, timezone.now()
    campaign.save(update_fields=["state", "started_at", "updated_at"])
    _audit_state(actor, campaign, "started", before)
    after_commit("marketing.tasks.fan_out_campaign", coalesce=False, campaign_id=campaign.pk)
    return campaign


def _campaign_messages(campaign: Campaign):
    return OutboxMessage.objects.filter(
        pk__in=CampaignRecipient.objects.filter(campaign=campaign, message__isnull=False).values("message_id")
    )


@transaction.atomic
def pause_campaign(*, actor: AbstractBaseUser | None, campaign: Campaign, reason: str = "") -> Campaign:
    """Stop new sends within seconds: the fan-out stops at its next chunk, and every queued
    message of the campaign is held (next attempt far in the future) in one UPDATE. Messages
    a worker already claimed finish: at most one batch per worker."""
    campaign = _lock(campaign)
    check_transition(campaign, State.PAUSED)
    before = campaign.state
    held = _campaign_messages(campaign).filter(status=OutboxMessage.Status.QUEUED).update(next_attempt_at=hold_until())
    campaign.state, campaign.pause_reason = State.PAUSED, (reason or "")[:300]
    campaign.save(update_fields=["state", "pause_reason", "updated_at"])
    _audit_state(actor, campaign, "paused", before, held=held, reason=campaign.pause_reason)
    if actor is None and reason:
        notify_author(campaign=campaign, subject=_("Paused: {{ name }}"), text=_("“{{ name }}”: {{ reason }}"), extra={"reason": reason})
    return campaign


@transaction.atomic
def resume_campaign(*, actor: AbstractBaseUser | None, campaign: Campaign) -> Campaign:
    """Release the held messages at their own scheduled time (or now) and let the fan-out
    continue where it stopped. Nothing is created twice: recipients are unique per contact
    and every outbox row has the dedup key campaign:<id>:<contact>."""
    campaign = _lock(campaign)
    check_transition(campaign, State.SENDING)
    if not can_resume(campaign):
        raise CampaignStateError(_("Only a paused campaign can be resumed."))
    now = timezone.now()
    released = (
        _campaign_messages(campaign)
        .filter(status=OutboxMessage.Status.QUEUED)
        .update(next_attempt_at=Greatest(Coalesce(F("scheduled_at"), Value(now)), Value(now)))
    )
    before = campaign.state
    campaign.state, campaign.pause_reason = State.SENDING, ""
    campaign.save(update_fields=["state", "pause_reason", "updated_at"])
    _audit_state(actor, campaign, "resumed", before, released=released)
    after_commit("marketing.tasks.fan_out_campaign", coalesce=False, campaign_id=campaign.pk)
    after_commit("messaging.tasks.drain_outbox", channel=campaign.channel)
    return campaign


@transaction.atomic
def cancel_campaign(*, actor: AbstractBaseUser | None, campaign: Campaign) -> Campaign:
    """Cancel: queued messages are cancelled in one UPDATE; the fan-out stops."""
    campaign = _lock(campaign)
    check_transition(campaign, State.CANCELLED)
    cancelled = (
        _campaign_messages(campaign)
        .filter(status=OutboxMessage.Status.QUEUED)
        .update(status=OutboxMessage.Status.CANCELLED, error=_("Campaign cancelled"))
    )
    before = campaign.state
    campaign.state, campaign.finished_at = State.CANCELLED, timezone.now()
    campaign.save(update_fields=["state", "finished_at", "updated_at"])
    _audit_state(actor, campaign, "cancelled", before, messages_cancelled=cancelled)
    return campaign


@transaction.atomic
def remove_recipient(*, actor: AbstractBaseUser, recipient: CampaignRecipient) -> CampaignRecipient:
    """Take one contact out of a campaign that is sending or paused: a message not created
    yet never will be, a queued one is cancelled; one already sent (or being sent) stays."""
    campaign = _lock(recipient.campaign)  # waits for a fan-out chunk in flight (it holds a share lock)
    if not can_remove_recipients(campaign):
        raise CampaignStateError(_("Recipients can be removed while the campaign is sending or paused."))
    recipient = CampaignRecipient.objects.select_for_update().select_related("contact").get(pk=recipient.pk)
    if recipient.status == CampaignRecipient.Status.SKIPPED:
        raise CampaignStateError(_("This recipient is already left out (%(reason)s).") % {"reason": recipient.get_skip_reason_display()})
    message = OutboxMessage.objects.filter(pk=recipient.message_id).first() if recipient.message_id else None
    if message is not None:
        try:
            cancel_message(actor=actor, message=message, reason=_("Removed from the campaign"))
        except NotAllowed:
            raise CampaignStateError(
                _("Its message is already %(status)s: it cannot be taken back.") % {"status": message.get_status_display().lower()}
            ) from None
    recipient.status, recipient.skip_reason = CampaignRecipient.Status.SKIPPED, CampaignRecipient.Skip.REMOVED
    recipient.save(update_fields=["status", "skip_reason"])
    record_audit(
        actor=actor,
        verb="recipient removed",
        target=campaign,
        changes={"recipient": {"before": str(recipient.contact), "after": None}, "message_cancelled": message is not None},
    )
    return recipient


@transaction.atomic
def complete_campaign(*, campaign: Campaign) -> Campaign | None:
    """Sending → sent once every message is created and none is queued or in flight."""
    campaign = _lock(campaign)
    if campaign.state != State.SENDING or campaign.fanout != Campaign.Fanout.DONE:
        return None
    if CampaignRecipient.objects.filter(campaign=campaign, status=CampaignRecipient.Status.HOLDOUT).exists():
        return None
    busy = _campaign_messages(campaign).filter(Q(status=OutboxMessage.Status.QUEUED) | Q(status=OutboxMessage.Status.SENDING))
    if busy.exists():
        return None
    before = campaign.state
    campaign.state, campaign.finished_at = State.SENT, timezone.now()
    campaign.save(update_fields=["state", "finished_at", "updated_at"])
    _audit_state(None, campaign, "sent", before)
    notify_author(campaign=campaign, subject=_("Sent: {{ name }}"), text=_("“{{ name }}” has been sent."))
    return campaign
