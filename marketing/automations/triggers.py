"""How runs start and end: event triggers (with property filters), exit events, confirmed
sign-up forms, and the scans for segment entry, date attributes and schedules in the
contact's time zone.

Every start goes through `start_run`, whose unique (automation, contact, trigger key) makes
the same trigger twice one run, whatever path it came by.
"""

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from marketing.automations.background import kick_runner
from marketing.automations.clock import as_datetime, parse_clock, zone_of
from marketing.automations.matching import compare, lookup
from marketing.automations.runner import end_run
from marketing.automations.status import live_automations
from marketing.models import Automation, AutomationRun, Event, SegmentMember
from messaging.models import Contact, SignupForm

logger = logging.getLogger(__name__)

Status = AutomationRun.Status
Trigger = Automation.Trigger
SCHEDULE_CATCH_UP = timedelta(hours=6)  # a schedule occurrence missed by less than this still runs
DATE_CATCH_UP = timedelta(days=1)


# --- event triggers ---------------------------------------------------------------------
def event_matches(automation: Automation, event: Event) -> bool:
    names = automation.trigger.get("events") or ([automation.trigger["event"]] if automation.trigger.get("event") else [])
    if event.name not in names and "*" not in names:
        return False
    return all(
        compare(lookup(event.properties, rule.get("property", "")), rule.get("op", "eq"), rule.get("value"))
        for rule in automation.trigger.get("filters") or []
    )


def event_context(event: Event) -> dict:
    return {
        **(event.properties or {}),
        "event": {"name": event.name, "properties": event.properties, "occurred_at": event.occurred_at.isoformat()},
    }


def in_audience(automation: Automation, contact_id: int) -> bool:
    if automation.audience_id is None:
        return True
    return SegmentMember.objects.filter(segment_id=automation.audience_id, contact_id=contact_id).exists()


def start_run(
    *, automation: Automation, contact: Contact, trigger_key: str, context: dict | None = None, event: Event | None = None
) -> tuple[AutomationRun | None, bool]:
    """Start `contact` on `automation` for one trigger, honouring the re-entry policy.
    Returns the run and whether it is new; the same trigger again returns the first run."""
    if contact.deleted_at or contact.erased_at:
        return None, False
    key = "once" if automation.reentry == Automation.Reentry.ONCE else trigger_key
    with transaction.atomic():
        existing = AutomationRun.objects.filter(automation=automation, contact=contact, trigger_key=key).first()
        if existing is not None:
            return existing, False
        active = AutomationRun.objects.select_for_update().filter(automation=automation, contact=contact, status=Status.ACTIVE)
        if automation.reentry == Automation.Reentry.AFTER_EXIT and active.exists():
            return active.first(), False
        if automation.reentry == Automation.Reentry.RESTART:
            for run in active:
                end_run(run, status=Status.EXITED, reason="restarted by a new trigger")
                run.save()
        try:
            with transaction.atomic():
                run = AutomationRun.objects.create(
                    automation=automation,
                    contact=contact,
                    trigger_key=key[:200],
                    trigger_event=event,
                    context=context or {},
                    next_run_at=timezone.now(),
                )
        except IntegrityError:  # the same trigger, started by a concurrent request
            return AutomationRun.objects.get(automation=automation, contact=contact, trigger_key=key), False
    kick_runner()
    return run, True


def exit_runs_for_event(event: Event) -> int:
    """End the contact's active runs whose automation lists this event as an exit (matching
    the property named in `match`, e.g. the same appointment_id), cancelling queued messages."""
    ended = 0
    runs = (
        AutomationRun.objects.filter(contact_id=event.contact_id, status=Status.ACTIVE)
        .exclude(trigger_event=event)
        .select_related("automation")
    )
    for run in runs:
        for rule in run.automation.exit_events or []:
            if rule.get("event") not in (event.name, "*"):
                continue
            match = rule.get("match")
            if match and str(lookup(run.context, match)) != str(lookup(event.properties, match)):
                continue
            with transaction.atomic():
                locked = AutomationRun.objects.select_for_update().filter(pk=run.pk, status=Status.ACTIVE).first()
                if locked is not None:
                    end_run(locked, status=Status.EXITED, reason=f"exit event {event.name}")
                    locked.save()
                    ended += 1
            break
    return ended


def fan_out_members(automation: Automation):
    return Contact.objects.active().filter(erased_at__isnull=True, segment_memberships__segment_id=automation.audience_id)


def start_runs_for_event(event: Event) -> int:
    started = 0
    for automation in live_automations(Automation.objects.filter(trigger_type=Trigger.EVENT)):
        if not event_matches(automation, event):
            continue
        context = event_context(event)
        if automation.trigger.get("fan_out") and automation.audience_id:
            # A broadcast event (new content published): every audience member gets a run.
            started += bulk_start(automation, fan_out_members(automation).values_list("id", flat=True), f"event:{event.pk}", context)
            continue
        if not in_audience(automation, event.contact_id):
            continue
        _run, created = start_run(
            automation=automation, contact=event.contact, trigger_key=f"event:{event.pk}", context=context, event=event
        )
        started += created
    return started


def handle_event(event: Event) -> None:
    """Exits first, then starts: an `appointment_rescheduled` ends the old reminders and
    plans new ones, and a run is never ended by the event that started it."""
    exit_runs_for_event(event)
    start_runs_for_event(event)


def on_event_tracked(sender, event: Event, **kwargs) -> None:
    """The `event_tracked` receiver: fast and failure-isolated, so ingestion never breaks."""
    try:
        handle_event(event)
    except Exception:
        logger.exception("automations could not handle event %s (%s)", event.pk, event.name)


# --- sign-up forms -----------------------------------------------------------------------
def form_matches(automation: Automation, form: SignupForm) -> bool:
    """A form-confirmed trigger names one form by its address, or none for any form."""
    wanted = (automation.trigger or {}).get("form") or ""
    return not wanted or wanted == form.slug


def start_runs_for_form(*, contact: Contact, form: SignupForm) -> int:
    """A confirmed sign-up starts each live form-confirmed automation for that form whose
    audience holds the contact; the same confirmation twice is one run."""
    started = 0
    context = {"form": {"slug": form.slug, "name": form.name}}
    for automation in live_automations(Automation.objects.filter(trigger_type=Trigger.FORM_CONFIRMED)):
        if not form_matches(automation, form) or not in_audience(automation, contact.pk):
            continue
        _run, created = start_run(
            automation=automation, contact=contact, trigger_key=f"form:{form.pk}:contact:{contact.pk}", context=context
        )
        started += created
    return started


def on_signup_confirmed(sender, contact: Contact, form: SignupForm, **kwargs) -> None:
    """The `signup_confirmed` receiver (sent after the confirmation commits): failure-isolated,
    so a confirmation never breaks on an automation."""
    try:
        start_runs_for_form(contact=contact, form=form)
    except Exception:
        logger.exception("automations could not handle the confirmed sign-up of contact %s on form %s", contact.pk, form.pk)


# --- scans --------------------------------------------------------------------------------
def bulk_start(automation: Automation, contact_ids, trigger_key: str, context: dict | None = None) -> int:
    """Runs for many contacts at once; an existing run for the same trigger is left alone."""
    now = timezone.now()
    ids = list(contact_ids)
    if automation.reentry == Automation.Reentry.ONCE:
        trigger_key = "once"
    if automation.reentry == Automation.Reentry.AFTER_EXIT:
        busy = set(
            AutomationRun.objects.filter(automation=automation, status=Status.ACTIVE, contact_id__in=ids).values_list(
                "contact_id", flat=True
            )
        )
        ids = [pk for pk in ids if pk not in busy]
    before = AutomationRun.objects.filter(automation=automation, trigger_key=trigger_key).count()
    AutomationRun.objects.bulk_create(
        [
            AutomationRun(automation=automation, contact_id=pk, trigger_key=trigger_key[:200], context=context or {}, next_run_at=now)
            for pk in ids
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    created = AutomationRun.objects.filter(automation=automation, trigger_key=trigger_key).count() - before
    if created:
        kick_runner()
    return created


def audience_contacts(automation: Automation):
    contacts = Contact.objects.active().filter(erased_at__isnull=True)
    if automation.audience_id:
        contacts = contacts.filter(segment_memberships__segment_id=automation.audience_id)
    return contacts


def last_occurrence(*, now: datetime, zone: ZoneInfo, at, weekday: int | None) -> datetime:
    """The latest local `at` (on `weekday`) at or before now."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    while candidate > local or (weekday is not None and candidate.weekday() != weekday):
        candidate = datetime.combine(candidate.date() - timedelta(days=1), at, tzinfo=zone)
    return candidate


def scan_schedule(automation: Automation, now: datetime) -> int:
    """E.g. every Monday 09:00 in each contact's own time zone: one query per time zone."""
    at = parse_clock(automation.trigger.get("time", "09:00"))
    weekday = automation.trigger.get("weekday")
    weekday = None if weekday in (None, "") else int(weekday)
    started = 0
    contacts = audience_contacts(automation)
    for zone_name in contacts.order_by().values_list("timezone", flat=True).distinct():
        zone = zone_of(Contact(timezone=zone_name))
        occurrence = last_occurrence(now=now, zone=zone, at=at, weekday=weekday)
        if now - occurrence > SCHEDULE_CATCH_UP or (automation.activated_at and occurrence < automation.activated_at):
            continue
        key = f"schedule:{occurrence.date().isoformat()}"
        started += bulk_start(automation, contacts.filter(timezone=zone_name).values_list("id", flat=True), key, {"occurrence": key[9:]})
    return started


def scan_segment_entry(automation: Automation, now: datetime) -> int:
    segment_id = automation.trigger.get("segment") or automation.audience_id
    if not segment_id:
        return 0
    since = max(
        filter(None, [automation.activated_at, automation.scanned_at and automation.scanned_at - timedelta(minutes=5)]),
        default=now - DATE_CATCH_UP,
    )
    started = 0
    members = SegmentMember.objects.filter(segment_id=segment_id, added_at__gte=since, contact__deleted_at__isnull=True)
    for added_at, contact_ids in _group_by_time(members.values_list("added_at", "contact_id")):
        started += bulk_start(automation, contact_ids, f"segment:{segment_id}:{added_at.isoformat()}", {"segment": segment_id})
    return started


def _group_by_time(rows) -> list[tuple[datetime, list[int]]]:
    groups: dict[datetime, list[int]] = {}
    for added_at, contact_id in rows:
        groups.setdefault(added_at, []).append(contact_id)
    return list(groups.items())


def date_fire_time(value, config: dict, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When a date attribute fires: a date at the local `at` time (this year's anniversary
    when `yearly`), or a datetime as is; plus `offset_minutes`."""
    if value in (None, ""):
        return None
    has_time = isinstance(value, str) and ("T" in value or " " in value.strip())
    moment = as_datetime(value, zone)
    if moment is None:
        return None
    if not has_time:
        at = parse_clock(config.get("at", "09:00"))
        day = moment.date()
        if config.get("yearly"):
            local_today = now.astimezone(zone).date()
            try:
                day = day.replace(year=local_today.year)
            except ValueError:  # 29 February in a common year
                day = day.replace(year=local_today.year, day=28)
        moment = datetime.combine(day, at, tzinfo=zone)
    return moment + timedelta(minutes=float(config.get("offset_minutes", 0)))


def scan_date(automation: Automation, now: datetime) -> int:
    """Contacts whose date attribute (+ offset) came due since the last scan."""
    name = automation.trigger.get("attribute", "")
    if not name:
        return 0
    floor = max(filter(None, [automation.activated_at, now - DATE_CATCH_UP]))
    started = 0
    rows = audience_contacts(automation).filter(attributes__has_key=name).values_list("id", "timezone", "attributes")
    for contact_id, zone_name, attributes in rows.iterator(chunk_size=2000):
        zone = zone_of(Contact(timezone=zone_name))
        fires = date_fire_time(attributes.get(name), automation.trigger, zone, now)
        if fires is None or not (floor <= fires <= now):
            continue
        started += bulk_start(automation, [contact_id], f"date:{name}:{fires.isoformat()}", {name: attributes.get(name)})
    return started


SCANNERS = {Trigger.SCHEDULE: scan_schedule, Trigger.SEGMENT_ENTRY: scan_segment_entry, Trigger.DATE: scan_date}


def scan_triggers(*, now: datetime | None = None) -> int:
    """Run every active scanning automation's scan (each isolated: one bad config is logged)."""
    now = now or timezone.now()
    started = 0
    for automation in live_automations(Automation.objects.filter(trigger_type__in=list(SCANNERS))):
        try:
            started += SCANNERS[automation.trigger_type](automation, now)
        except Exception:
            logger.exception("automation %s: trigger scan failed", automation.pk)
            continue
        Automation.objects.filter(pk=automation.pk).update(scanned_at=now)
    return started
