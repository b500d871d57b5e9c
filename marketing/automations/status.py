"""Whether an automation may run, read from its row: does it fan out, is it live, did the
content its approval covers change. Selectors only; the approval actions that change these
live in `marketing.automations.approval`."""

from django.db.models import Q, QuerySet

from marketing.models import Automation, AutomationStep
from messaging.models import Template

State = Automation.State
Trigger = Automation.Trigger
PER_CONTACT = (Trigger.EVENT, Trigger.FORM_CONFIRMED)  # one trigger, one contact (unless an event fans out)


# --- what fans out -----------------------------------------------------------------------
def fans_out(automation: Automation) -> bool:
    """True when one trigger can start runs for many contacts."""
    if automation.trigger_type == Trigger.EVENT:
        return bool((automation.trigger or {}).get("fan_out"))
    return automation.trigger_type not in PER_CONTACT


def fan_out_q() -> Q:
    """A superset of `fans_out` as a query (narrowed in Python: a negated JSON key lookup
    is not portable between SQLite and PostgreSQL)."""
    return ~Q(trigger_type__in=PER_CONTACT) | Q(trigger_type=Trigger.EVENT, trigger__fan_out=True)


# --- what may run ------------------------------------------------------------------------
def is_live(automation: Automation) -> bool:
    """May start and advance runs: active, and approved when it fans out."""
    return automation.state == State.ACTIVE and (automation.approved_at is not None or not fans_out(automation))


def live_automations(automations: QuerySet[Automation] | None = None) -> list[Automation]:
    """The live ones among `automations` (default: all)."""
    automations = Automation.objects.all() if automations is None else automations
    return [automation for automation in automations.filter(state=State.ACTIVE) if is_live(automation)]


def held_automation_ids() -> list[int]:
    """Active but unapproved fan-out automations (only a write outside the actions makes
    one): the runner leaves their runs alone."""
    active = Automation.objects.filter(fan_out_q(), state=State.ACTIVE, approved_at__isnull=True)
    return [automation.pk for automation in active if not is_live(automation)]


# --- the content an approval covers -------------------------------------------------------
def template_snapshot(keys) -> dict[str, list[list]]:
    """The templates behind send-step keys as they are now: id, active version and topic of
    each language's template. A new active version or another topic is new content."""
    snapshot: dict[str, list[list]] = {}
    rows = Template.objects.filter(key__in=list(keys)).order_by("key", "pk").values_list("key", "pk", "active_version_id", "topic_id")
    for key, pk, version, topic in rows:
        snapshot.setdefault(key, []).append([pk, version, topic])
    return snapshot


def approved_content_of(automation: Automation) -> dict[str, list[list]]:
    keys = {step.config.get("template") for step in automation.steps.filter(kind=AutomationStep.Kind.SEND)}
    return template_snapshot(keys - {None})


def content_changed_since_approval(automation: Automation, key: str) -> bool:
    """For the send step at run time: did the template it sends change after the approval?"""
    return fans_out(automation) and template_snapshot([key]).get(key, []) != (automation.approved_content or {}).get(key, [])
