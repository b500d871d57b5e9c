"""What each step kind means: validating its settings and executing it for one run.

Executing a step never commits on its own: the runner calls `execute_step` inside the
transaction that also advances the run and writes its log row, so a step happens exactly
once or not at all.

Settings per kind (the JSON in AutomationStep.config):

- send:      {"template": "cart-abandoned", "channel": "email", "topic": "promotions"?,
              "context": "order" | "weekly_progress"?, "once_per": "appointment_id"?}
             (`once_per`: one message per contact and value of that run property, whichever
             run gets there first, e.g. one confirmation per appointment booked then confirmed)
- wait:      {"minutes": 60} / {"hours": 24} / {"days": 7} / {"seconds": 30}
             or {"until": {"property": "appointment_at", "offset_minutes": -1440}}
             or {"until": {"attribute": "renewal_at", "offset_minutes": 0}}
             or {"until": {"time": "09:00", "weekday": 0}} (next such local time);
             "if_past": "continue" (default) or "skip_next" (skip the following step).
- condition: {"check": "consent", "topic": "promotions", "channel": "email"}
             {"check": "attribute" | "property", "name": "plan", "op": "eq", "value": "pro"}
             {"check": "tag", "tag": "vip"}  {"check": "event_since_start", "event": "order_paid"}
             "else": "exit" (default) or {"goto": <step number, later than this one>}.
- update:    {"set": {"lifecycle": "dormant"}, "unset": ["cart"], "add_tag": "x", "remove_tag": "y"}
- exit:      {"reason": "…"}
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from marketing.automations.approval import content_changed_since_approval, hold_for_changed_content
from marketing.models import Automation, AutomationRun, AutomationStep, AutomationStepLog, Event, Order
from messaging.delivery.outbox import enqueue_message
from messaging.errors import InvalidInput
from messaging.metadata import AUTOMATION_KEY
from messaging.models import Channel, Contact, OutboxMessage, Subscription, Template, Topic

Kind = AutomationStep.Kind
Outcome = AutomationStepLog.Outcome
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "exists", "not_exists", "in")
CONTEXT_BUILDERS = ("order", "weekly_progress")


# --- time -----------------------------------------------------------------------------------
def zone_of(contact: Contact) -> ZoneInfo:
    try:
        return ZoneInfo(contact.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_clock(value: str) -> time:
    hours, _sep, minutes = str(value).partition(":")
    return time(int(hours), int(minutes or 0))


def next_local_time(*, after: datetime, zone: ZoneInfo, at: time, weekday: int | None = None) -> datetime:
    """The first wall-clock `at` (on `weekday`, 0 = Monday) strictly after `after`, in `zone`."""
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    for _day in range(8):
        if candidate > local and (weekday is None or candidate.weekday() == weekday):
            return candidate.astimezone(ZoneInfo("UTC"))
        candidate = datetime.combine(candidate.date() + timedelta(days=1), at, tzinfo=zone)
    raise AssertionError("unreachable")


def as_datetime(value: Any, zone: ZoneInfo) -> datetime | None:
    """An ISO datetime (naive ones are local to the contact) or a date (midnight local)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        parsed = datetime.combine(day, time(0)) if day else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=zone)
    return parsed


# --- comparisons ----------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        return actual is not None and actual != ""
    if op == "not_exists":
        return actual is None or actual == ""
    if op == "eq":
        return actual == expected or (actual is not None and str(actual) == str(expected))
    if op == "ne":
        return not compare(actual, "eq", expected)
    if op == "contains":
        return actual is not None and (expected in actual if isinstance(actual, list) else str(expected) in str(actual))
    if op == "in":
        return isinstance(expected, list) and (actual in expected or str(actual) in map(str, expected))
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        return False
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}.get(op, False)


def lookup(data: dict, path: str) -> Any:
    """`a.b.c` through nested dicts; None when any part is missing."""
    value: Any = data
    for part in str(path).split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# --- validation -----------------------------------------------------------------------------
def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, fields={"config": [message]})


def clean_step_config(*, kind: str, config: dict | None, position: int | None = None) -> dict:
    """Check one step's settings; returns them cleaned. Raises InvalidInput naming the problem."""
    if kind not in Kind.values:
        raise InvalidInput(_("Unknown step kind “%(kind)s”.") % {"kind": kind}, fields={"kind": [_("Unknown step kind.")]})
    config = dict(config or {})
    if kind == Kind.SEND:
        key = str(config.get("template", "")).strip()
        if not key or not Template.objects.filter(key=key).exists():
            raise _invalid(_("A send step needs the key of an existing template (got “%(key)s”).") % {"key": key})
        channel = config.setdefault("channel", Channel.EMAIL)
        if channel not in Channel.values:
            raise _invalid(_("Unknown channel “%(channel)s”.") % {"channel": channel})
        if config.get("topic") and not Topic.objects.filter(key=config["topic"]).exists():
            raise _invalid(_("No topic with the key “%(key)s”.") % {"key": config["topic"]})
        if config.get("context") and config["context"] not in CONTEXT_BUILDERS:
            raise _invalid(_("Unknown message context “%(name)s”.") % {"name": config["context"]})
        if "once_per" in config and (not isinstance(config["once_per"], str) or not config["once_per"].strip()):
            raise _invalid(_("“once_per” names a property of the event, e.g. appointment_id."))
        config["template"] = key
    elif kind == Kind.WAIT:
        until = config.get("until")
        durations = {unit: config[unit] for unit in ("seconds", "minutes", "hours", "days") if unit in config}
        if until is None and not durations:
            raise _invalid(_("A wait needs a duration (minutes, hours or days) or an “until”."))
        for unit, amount in durations.items():
            if _number(amount) is None or _number(amount) < 0:
                raise _invalid(_("The wait's %(unit)s must be a positive number.") % {"unit": unit})
        if until is not None:
            if not isinstance(until, dict) or not ({"property", "attribute", "time"} & set(until)):
                raise _invalid(_("“until” names a property, an attribute or a local time."))
            if "time" in until:
                try:
                    parse_clock(until["time"])
                except ValueError:
                    raise _invalid(_("“%(value)s” is not a time like 09:00.") % {"value": until["time"]}) from None
        if config.get("if_past", "continue") not in ("continue", "skip_next"):
            raise _invalid(_("“if_past” is continue or skip_next."))
    elif kind == Kind.CONDITION:
        check = config.get("check")
        if check not in ("consent", "attribute", "property", "tag", "event_since_start"):
            raise _invalid(_("A condition checks consent, attribute, property, tag or event_since_start."))
        if check in ("attribute", "property") and config.get("op", "eq") not in OPERATORS:
            raise _invalid(_("Unknown operator “%(op)s”.") % {"op": config.get("op")})
        otherwise = config.get("else", "exit")
        if otherwise != "exit":
            target = otherwise.get("goto") if isinstance(otherwise, dict) else None
            if not isinstance(target, int) or (position is not None and target <= position + 1):
                raise _invalid(_("“else” is exit or {“goto”: a later step number}."))
    elif kind == Kind.UPDATE:
        if not any(config.get(name) for name in ("set", "unset", "add_tag", "remove_tag")):
            raise _invalid(_("An update sets or unsets attributes, or adds or removes a tag."))
        if "set" in config and not isinstance(config["set"], dict):
            raise _invalid(_("“set” is an object of attribute names and values."))
    return config


# --- message context ------------------------------------------------------------------------
def order_context(run: AutomationRun) -> dict:
    """order / invoice / shipment / retry_url / activation_url from the order the trigger names."""
    order_id = lookup(run.context, "order_id") or lookup(run.context, "order.id")
    order = Order.objects.filter(external_id=order_id).first() if order_id else None
    if order is None:
        return {}
    details = order.details or {}
    return {
        "order": {"number": order.external_id, "total": str(order.amount), "currency": order.currency, "status": order.status}
        | (details.get("order") or {}),
        "invoice": {"number": order.external_id, "url": details.get("invoice_url", "")} | (details.get("invoice") or {}),
        "shipment": details.get("shipment") or {},
        "retry_url": details.get("retry_url", ""),
        "activation_url": details.get("activation_url", ""),
    }


def weekly_progress_context(run: AutomationRun, now: datetime) -> dict:
    """The contact's numbers for the seven days before now: lessons completed and minutes."""
    since = now - timedelta(days=7)
    events = Event.objects.filter(contact_id=run.contact_id, name="lesson_completed", occurred_at__gte=since, occurred_at__lt=now)
    figures = events.aggregate(n=Count("id"))
    minutes = sum(int(_number(lookup(props, "minutes")) or 0) for props in events.values_list("properties", flat=True))
    week_start = (now.astimezone(zone_of(run.contact)) - timedelta(days=7)).date()
    return {
        "progress": {
            "lessons_completed": figures["n"],
            "minutes": minutes,
            "week": week_start.isoformat(),
            "url": lookup(run.contact.attributes, "progress_url") or "",
        }
    }


def message_context(run: AutomationRun, config: dict, now: datetime) -> dict:
    context = dict(run.context)
    name = config.get("context") or ("order" if lookup(run.context, "order_id") else "")
    if name == "order":
        context |= order_context(run)
    elif name == "weekly_progress":
        context |= weekly_progress_context(run, now)
    appointment_at = as_datetime(context.get("appointment_at"), zone_of(run.contact))
    if appointment_at is not None:  # "when" in the contact's own time zone unless the host gave one
        when = appointment_at.astimezone(zone_of(run.contact)).strftime("%Y-%m-%d %H:%M")
        context["appointment"] = {"when": when} | (context.get("appointment") or {})
    return context


# --- execution ------------------------------------------------------------------------------
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


def condition_holds(run: AutomationRun, config: dict) -> bool:
    check, contact = config["check"], run.contact
    if check == "consent":
        return Subscription.objects.filter(
            contact=contact,
            topic__key=config.get("topic", ""),
            channel=config.get("channel", Channel.EMAIL),
            status=Subscription.Status.SUBSCRIBED,
        ).exists()
    if check == "tag":
        return config.get("tag") in (contact.attributes.get("tags") or [])
    if check == "event_since_start":
        return Event.objects.filter(contact=contact, name=config.get("event", ""), occurred_at__gte=run.started_at).exists()
    source = contact.attributes if check == "attribute" else run.context
    return compare(lookup(source, config.get("name", "")), config.get("op", "eq"), config.get("value"))


def condition_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    if condition_holds(run, config):
        return StepResult(Outcome.PASSED)
    otherwise = config.get("else", "exit")
    if otherwise == "exit":
        return StepResult(Outcome.BRANCHED, _("Not met: exit."), end_status=AutomationRun.Status.EXITED)
    target = int(otherwise["goto"]) - 1  # step numbers are 1-based for people
    return StepResult(Outcome.BRANCHED, _("Not met: go to step %(n)s.") % {"n": target + 1}, next_index=max(target, index + 1))


def update_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    contact = Contact.objects.select_for_update().get(pk=run.contact_id)
    attributes = dict(contact.attributes or {})
    attributes.update(config.get("set") or {})
    for name in config.get("unset") or []:
        attributes.pop(name, None)
    tags = list(attributes.get("tags") or [])
    if config.get("add_tag") and config["add_tag"] not in tags:
        tags.append(config["add_tag"])
    if config.get("remove_tag") in tags:
        tags.remove(config["remove_tag"])
    if tags or "tags" in attributes:
        attributes["tags"] = tags
    changed = sorted(k for k in set(attributes) | set(contact.attributes) if attributes.get(k) != contact.attributes.get(k))
    contact.attributes = attributes
    contact.save(update_fields=["attributes", "updated_at"])
    run.contact = contact
    return StepResult(Outcome.UPDATED, ", ".join(changed)[:300])


def exit_step(run: AutomationRun, step: AutomationStep, index: int, config: dict, now: datetime) -> StepResult:
    return StepResult(Outcome.EXITED, config.get("reason", "")[:300], end_status=AutomationRun.Status.COMPLETED)


EXECUTORS = {Kind.SEND: send_step, Kind.WAIT: wait_step, Kind.CONDITION: condition_step, Kind.UPDATE: update_step, Kind.EXIT: exit_step}


def execute_step(run: AutomationRun, step: AutomationStep, index: int, now: datetime) -> StepResult:
    return EXECUTORS[step.kind](run, step, index, step.config or {}, now)


def _q(name) -> str:
    return _("“%(name)s”") % {"name": name}


def _describe_condition(config: dict) -> str:
    check = config.get("check")
    if check == "consent":
        what = _("the contact accepts %(topic)s by %(channel)s") % {
            "topic": _q(config.get("topic", "")),
            "channel": config.get("channel", "email"),
        }
    elif check in ("attribute", "property"):
        from marketing.automations.describe import NO_VALUE_OPERATORS, OPERATOR_LABELS

        op = config.get("op", "eq")
        label = _("the attribute %(name)s") if check == "attribute" else _("the event property %(name)s")
        what = f"{label % {'name': _q(config.get('name', ''))}} {OPERATOR_LABELS.get(op, op)}"
        if op not in NO_VALUE_OPERATORS:
            what += f" {config.get('value', '')}"
    elif check == "tag":
        what = _("the contact is tagged %(tag)s") % {"tag": _q(config.get("tag", ""))}
    elif check == "event_since_start":
        what = _("the event %(name)s happened since the run started") % {"name": _q(config.get("event", ""))}
    else:
        what = str(check)
    otherwise = config.get("else", "exit")
    if otherwise == "exit":
        return _("If %(condition)s; otherwise exit") % {"condition": what}
    return _("If %(condition)s; otherwise go to step %(step)s") % {"condition": what, "step": otherwise.get("goto")}


def _describe_update(config: dict) -> str:
    parts = [_("set %(name)s to %(value)s") % {"name": _q(name), "value": value} for name, value in (config.get("set") or {}).items()]
    parts += [_("clear %(name)s") % {"name": _q(name)} for name in config.get("unset") or []]
    if config.get("add_tag"):
        parts.append(_("add the tag %(tag)s") % {"tag": _q(config["add_tag"])})
    if config.get("remove_tag"):
        parts.append(_("remove the tag %(tag)s") % {"tag": _q(config["remove_tag"])})
    return _("Update the contact: %(changes)s") % {"changes": ", ".join(parts)}


def describe_step(kind: str, config: dict) -> str:
    """One line for the console's step list."""
    if kind == Kind.SEND:
        return _("Send “%(template)s” by %(channel)s") % {"template": config.get("template"), "channel": config.get("channel", "email")}
    if kind == Kind.WAIT:
        until = config.get("until")
        if until:
            if "time" in until:
                return _("Wait until %(time)s local time") % {"time": until["time"]}
            minutes = float(until.get("offset_minutes", 0))
            return _("Wait until %(name)s %(sign)s %(hours)s h") % {
                "name": _q(until.get("property") or until.get("attribute")),
                "sign": "−" if minutes < 0 else "+",
                "hours": f"{abs(minutes) / 60:g}",
            }
        units = {
            "days": lambda n: ngettext("%(n)s day", "%(n)s days", n),
            "hours": lambda n: ngettext("%(n)s hour", "%(n)s hours", n),
            "minutes": lambda n: ngettext("%(n)s minute", "%(n)s minutes", n),
            "seconds": lambda n: ngettext("%(n)s second", "%(n)s seconds", n),
        }
        amounts = {u: _number(config[u]) or 0.0 for u in ("days", "hours", "minutes", "seconds") if u in config}
        parts = [units[u](int(n) if n.is_integer() else 2) % {"n": f"{n:g}"} for u, n in amounts.items()]
        return _("Wait %(duration)s") % {"duration": " ".join(parts)}
    if kind == Kind.CONDITION:
        return _describe_condition(config)
    if kind == Kind.UPDATE:
        return _describe_update(config)
    return _("Exit")
