"""Executing one step for one run. The runner calls `execute_step` inside the transaction
that also advances the run and writes its log row, so a step happens exactly once or not
at all; an executor never commits on its own."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from marketing.automations.approval import hold_for_changed_content
from marketing.automations.clock import as_datetime, next_local_time, parse_clock, zone_of
from marketing.automations.matching import lookup
from marketing.automations.status import content_changed_since_approval
from marketing.automations.steps.conditions import condition_holds
from marketing.automations.steps.context import message_context
from marketing.models import Automation, AutomationRun, AutomationStep, AutomationStepLog
from messaging.consent import ConsentContext, subscribe
from messaging.contacts import update_contact_attributes
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput
from messaging.metadata import AUTOMATION_KEY
from messaging.models import Channel, ConsentRecord, Contact, OutboxMessage, Template, Topic
from messaging.preferences import unsubscribe_contact

Kind = AutomationStep.Kind
Outcome = AutomationStepLog.Outcome


@dataclass
class StepResult:
    outcome: str
    detail: str = ""
    message: OutboxMessage | None = None
    next_index: int | None = None  # None: the next step
    next_run_at: datetime | None = None  # None: now
    end_status: str | None = None  # a terminal AutomationRun.Status


def resolve_topic(*, automation: Automation, template: Template, config: dict) -> Topic | None:
    if config.get("topic"):
        return Topic.objects.filter(key=config["topic"]).first()
    return template.topic


def quiet_hours_end(automation: Automation, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the current quiet period ends, or None when now is not inside one."""
    start, end = automation.quiet_hours_start, automation.quiet_hours_end
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone).time()
    inside = (start <= local < end) if start < end else (local >= start or local < end)
    return next_local_time(after=now, zone=zone, at=end) if inside else None


def frequency_cap_frees_at(automation: Automation, contact: Contact, now: datetime) -> datetime | None:
    """When the contact's marketing cap frees a slot, or None when a message may go now."""
    if not automation.frequency_cap:
        return None
    window = timedelta(hours=automation.frequency_window_hours or 24)
    recent = (
        OutboxMessage.objects.filter(contact=contact, is_marketing=True, created_at__gt=now - window)
        .exclude(topic__time_sensitive=True)
        .exclude(status__in=[OutboxMessage.Status.CANCELLED, OutboxMessage.Status.SUPPRESSED, OutboxMessage.Status.FAILED])
        .order_by("-created_at")
        .values_list("created_at", flat=True)
    )
    times = list(recent[: automation.frequency_cap])
    if len(times) < automation.frequency_cap:
        return None
    return times[-1] + window + timedelta(seconds=1)


def send_dedup_key(run: AutomationRun, step: AutomationStep, config: dict) -> str:
    """Per run and step (its id, not its position, which moves when steps are added or
    removed), or with `once_per` per contact and property value across the automation's runs."""
    value = lookup(run.context, config["once_per"]) if config.get("once_per") else None
    if value is None or isinstance(value, (dict, list)):
        return f"automation:{run.pk}:step:{step.pk}"
    return f"automation:{run.automation_id}:contact:{run.contact_id}:{config['once_per'][:40]}:{str(value)[:80]}:step:{step.pk}"


def send_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    automation, contact = run.automation, run.contact
    template = Template.objects.filter(key=config["template"]).order_by("pk").first()
    if template is None:
        return StepResult(Outcome.FAILED, _("The template “%(key)s” no longer exists.") % {"key": config["template"]})
    if content_changed_since_approval(automation, config["template"]):  # a fan-out sends only what was approved
        hold_for_changed_content(automation=automation, key=config["template"])
        detail = _("The template “%(key)s” changed after approval: waiting for a new approval.") % {"key": config["template"]}
        return StepResult(Outcome.POSTPONED, detail, next_index=index, next_run_at=now)
    topic = resolve_topic(automation=automation, template=template, config=config)
    is_marketing_topic = topic is not None and topic.kind == Topic.Kind.MARKETING
    if automation.is_transactional and is_marketing_topic:
        return StepResult(Outcome.FAILED, _("A transactional flow cannot send on the marketing topic “%(topic)s”.") % {"topic": topic})
    if not automation.is_transactional and not is_marketing_topic:
        return StepResult(Outcome.FAILED, _("A marketing flow sends on a marketing topic; “%(key)s” has none.") % {"key": template.key})
    scheduled_at, detail = None, ""
    if not automation.is_transactional:
        frees_at = frequency_cap_frees_at(automation, contact, now)
        if frees_at is not None:
            return StepResult(
                Outcome.POSTPONED,
                _("Frequency cap reached; trying again at %(when)s.") % {"when": frees_at.isoformat(timespec="minutes")},
                next_index=index,
                next_run_at=frees_at,
            )
        scheduled_at = quiet_hours_end(automation, zone_of(contact), now)
        if scheduled_at is not None:
            detail = _("Quiet hours: scheduled for %(when)s.") % {"when": scheduled_at.isoformat(timespec="minutes")}
    try:
        message = enqueue_message(
            channel=config.get("channel", Channel.EMAIL),
            contact=contact,
            template=template,
            topic=topic,
            context=message_context(run, config, now),
            priority=OutboxMessage.Priority.HIGH if automation.is_transactional else OutboxMessage.Priority.NORMAL,
            scheduled_at=scheduled_at,
            dedup_key=send_dedup_key(run, step, config),
            metadata={AUTOMATION_KEY: automation.pk, "automation_run": run.pk, "step": index},
        )
    except InvalidInput as error:  # no address on this channel, template without an active version…
        return StepResult(Outcome.FAILED, str(error)[:300])
    return StepResult(Outcome.SENT, detail or template.key, message=message)


def wait_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    zone = zone_of(run.contact)
    until = config.get("until")
    if until is None:
        delta = timedelta(
            days=float(config.get("days", 0)),
            hours=float(config.get("hours", 0)),
            minutes=float(config.get("minutes", 0)),
            seconds=float(config.get("seconds", 0)),
        )
        target = now + delta
    elif "time" in until:
        weekday = until.get("weekday")
        target = next_local_time(after=now, zone=zone, at=parse_clock(until["time"]), weekday=None if weekday is None else int(weekday))
    else:
        source = run.context if "property" in until else run.contact.attributes
        raw = lookup(source, until.get("property") or until.get("attribute"))
        moment = as_datetime(raw, zone)
        if moment is None:
            return StepResult(Outcome.FAILED, _("No date in “%(name)s”.") % {"name": until.get("property") or until.get("attribute")})
        target = moment + timedelta(minutes=float(until.get("offset_minutes", 0)))
    if target <= now and config.get("if_past") == "skip_next":
        return StepResult(
            Outcome.SKIPPED, _("Already past %(when)s: the next step is skipped.") % {"when": target.isoformat()}, next_index=index + 2
        )
    target = max(target, now)
    return StepResult(Outcome.WAITING, _("Until %(when)s") % {"when": target.isoformat(timespec="minutes")}, next_run_at=target)


def condition_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    if condition_holds(run, config):
        return StepResult(Outcome.PASSED)
    otherwise = config.get("else", "exit")
    if otherwise == "exit":
        return StepResult(Outcome.BRANCHED, _("Not met: exit."), end_status=AutomationRun.Status.EXITED)
    target = int(otherwise["goto"]) - 1  # step numbers are 1-based for people
    return StepResult(Outcome.BRANCHED, _("Not met: go to step %(n)s.") % {"n": target + 1}, next_index=max(target, index + 1))


def update_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    """Set attributes or tags through messaging's contact action (its rules, its audit)."""
    try:
        contact, changed = update_contact_attributes(
            actor=None,
            contact=run.contact,
            values=config.get("set") or {},
            unset=config.get("unset") or [],
            add_tag=config.get("add_tag") or "",
            remove_tag=config.get("remove_tag") or "",
        )
    except InvalidInput as error:  # an erased contact, a value that cannot be stored…
        return StepResult(Outcome.FAILED, str(error)[:300])
    run.contact = contact
    return StepResult(Outcome.UPDATED, ", ".join(changed)[:300])


def _consent_context(run: AutomationRun, index: int) -> ConsentContext:
    """Where an automation's consent change came from, for the consent log."""
    details = {"automation": run.automation_id, "automation_name": run.automation.name, "step": index + 1, "run": run.pk}
    return ConsentContext(source=ConsentRecord.Source.SYSTEM, details=details)


def _topic_of(config: dict) -> Topic | None:
    return Topic.objects.filter(key=config.get("topic", "")).first()


def _topic_gone(config: dict) -> StepResult:
    return StepResult(Outcome.FAILED, _("The topic “%(key)s” no longer exists.") % {"key": config.get("topic", "")})


def subscribe_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    topic = _topic_of(config)
    if topic is None:
        return _topic_gone(config)
    channel = config.get("channel", Channel.EMAIL)
    try:
        subscribe(actor=None, contact=run.contact, topic=topic, channel=channel, context=_consent_context(run, index))
    except InvalidInput as error:  # an erased or deleted contact, an unknown channel
        return StepResult(Outcome.FAILED, str(error)[:300])
    return StepResult(Outcome.UPDATED, _("Subscribed to “%(topic)s” (%(channel)s).") % {"topic": topic.name, "channel": channel})


def unsubscribe_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    topic = _topic_of(config)
    if topic is None:
        return _topic_gone(config)
    channel = config.get("channel", Channel.EMAIL)
    try:
        unsubscribe_contact(actor=None, contact=run.contact, topic=topic, channel=channel, context=_consent_context(run, index))
    except InvalidInput as error:
        return StepResult(Outcome.FAILED, str(error)[:300])
    return StepResult(Outcome.UPDATED, _("Unsubscribed from “%(topic)s” (%(channel)s).") % {"topic": topic.name, "channel": channel})


def exit_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    return StepResult(Outcome.EXITED, config.get("reason", "")[:300], end_status=AutomationRun.Status.COMPLETED)


EXECUTORS = {
    Kind.SEND: send_step,
    Kind.WAIT: wait_step,
    Kind.CONDITION: condition_step,
    Kind.UPDATE: update_step,
    Kind.SUBSCRIBE: subscribe_step,
    Kind.UNSUBSCRIBE: unsubscribe_step,
    Kind.EXIT: exit_step,
}


def execute_step(run: AutomationRun, step: AutomationStep, index: int, now: datetime) -> StepResult:
    return EXECUTORS[step.kind](run, step, index, step.config or {}, now)
