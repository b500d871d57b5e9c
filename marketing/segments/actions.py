"""Actions on segments. Views, the API and tasks call these; none re-checks a rule."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Window
from django.utils import timezone
from django.utils.translation import gettext as _

from marketing.models import Segment, SegmentMember
from marketing.segments.compiler import compile_rules, contacts_matching
from marketing.segments.signals import segment_audience_changed, segment_audience_changing
from messaging.audit import record_audit
from messaging.contact_fields import normalise_email
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import Contact
from messaging.storable import require_storable

SAMPLE_SIZE = 8


def _audience_changing(*, segment: Segment, actor: AbstractBaseUser | None, change: str) -> None:
    """Before a change to who is in `segment`: whoever relies on its audience (campaign
    approvals, invariant 9) hears it through `segment_audience_changing` and may refuse."""
    segment_audience_changing.send(sender=Segment, segment=segment, actor=actor, change=change)


def _audience_edited(*, segment: Segment, actor: AbstractBaseUser | None, change: str) -> None:
    """A person changed who is in `segment`: whoever reads it (fan-out automations need a new
    approval) hears it through `segment_audience_changed`, inside the edit's transaction."""
    segment_audience_changed.send(sender=Segment, segment=segment, actor=actor, change=change)


@dataclass
class Preview:
    count: int
    sample: list[Contact]


def preview_rules(*, rules: dict, sample_size: int = SAMPLE_SIZE) -> Preview:
    """The live count and a few members, for the builder as the marketer types. One pass:
    the count rides along the sample's ids as a window aggregate, so the rule's subqueries
    (orders per contact, events…) are computed once, not once for the count and again for
    the sample."""
    require_storable(rules=rules)  # a NUL in a value never reaches the database (PostgreSQL refuses it)
    newest = contacts_matching(rules).annotate(total=Window(Count("id"))).order_by("-id").values_list("id", "total")[:sample_size]
    rows = list(newest)
    if not rows:
        return Preview(count=0, sample=[])
    sample = Contact.objects.in_bulk([pk for pk, _total in rows])
    return Preview(count=rows[0][1], sample=[sample[pk] for pk, _total in rows if pk in sample])


def _clean_name(name: str, *, exclude_pk: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_("A segment needs a name."), fields={"name": [_("This field is required.")]})
    if len(name) > 150:
        raise InvalidInput(_("A segment name has at most 150 characters."), fields={"name": [_("Too long.")]})
    if Segment.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        raise InvalidInput(_("A segment named “%(name)s” already exists.") % {"name": name}, fields={"name": [_("Already used.")]})
    return name


@transaction.atomic
def create_segment(
    *, name: str, actor: AbstractBaseUser | None, kind: str = Segment.Kind.DYNAMIC, rules: dict | None = None, description: str = ""
) -> Segment:
    if kind not in Segment.Kind.values:
        raise InvalidInput(_("A segment is dynamic or static."), fields={"kind": [_("Unknown kind.")]})
    segment = Segment(name=_clean_name(name), kind=kind, description=description, created_by=actor if actor and actor.pk else None)
    if rules is not None:
        if kind == Segment.Kind.STATIC:
            raise InvalidInput(_("A static segment has members, not rules."), fields={"rules": [_("Not for static segments.")]})
        require_storable(rules=rules)
        compile_rules(rules)
        segment.rules = rules
    segment.save()
    record_audit(actor=actor, verb="created", target=segment, changes={"kind": kind, "rules": segment.rules})
    return segment


@transaction.atomic
def update_segment(
    *, segment: Segment, actor: AbstractBaseUser | None, name: str | None = None, description: str | None = None, rules: dict | None = None
) -> Segment:
    """Change a segment. New rules are compiled first, so a bad rule changes nothing."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    changes = {}
    if name is not None and name.strip() != segment.name:
        changes["name"] = {"before": segment.name, "after": _clean_name(name, exclude_pk=segment.pk)}
        segment.name = name.strip()
    if description is not None and description != segment.description:
        changes["description"] = {"before": segment.description, "after": description}
        segment.description = description
    if rules is not None and segment.kind == Segment.Kind.STATIC:
        raise InvalidInput(_("A static segment has members, not rules."), fields={"rules": [_("Not for static segments.")]})
    if rules is not None and rules != segment.rules:
        require_storable(rules=rules)  # the builder's form values never pass the API's parser
        compile_rules(rules)
        changes["rules"] = {"before": segment.rules, "after": rules}
        segment.rules = rules
        _audience_changing(segment=segment, actor=actor, change=_("its rules were edited"))
    if changes:
        segment.save()
        record_audit(actor=actor, verb="changed", target=segment, changes=changes)
    if "rules" in changes:
        _audience_edited(segment=segment, actor=actor, change=_("rules changed"))
    return segment


@transaction.atomic
def duplicate_segment(*, segment: Segment, actor: AbstractBaseUser | None) -> Segment:
    base = _("%(name)s (copy)") % {"name": segment.name}
    name, number = base[:150], 2
    while Segment.objects.filter(name__iexact=name).exists():
        name, number = f"{base[:140]} {number}", number + 1
    copy = Segment.objects.create(
        name=name,
        description=segment.description,
        kind=segment.kind,
        rules=segment.rules,
        created_by=actor if actor and actor.pk else None,
    )
    if segment.kind == Segment.Kind.STATIC:
        now = timezone.now()
        SegmentMember.objects.bulk_create(
            SegmentMember(segment=copy, contact_id=contact_id, added_at=now)
            for contact_id in segment.members.values_list("contact_id", flat=True).iterator()
        )
        copy.member_count = copy.members.count()
        copy.refreshed_at = now
        copy.save(update_fields=["member_count", "refreshed_at"])
    record_audit(actor=actor, verb="duplicated", target=copy, changes={"from": segment.pk})
    return copy


def _insert_members_sql(*, segment_id: int, contacts: QuerySet[Contact], now) -> tuple[str, list]:
    """INSERT … SELECT: the database copies the matching ids itself, no rows in Python."""
    select_sql, params = contacts.order_by().values("id").query.sql_with_params()
    member = SegmentMember._meta.db_table
    sql = (
        f"INSERT INTO {member} (segment_id, contact_id, added_at) "
        f"SELECT %s, matching.id, %s FROM ({select_sql}) matching "
        f"WHERE NOT EXISTS (SELECT 1 FROM {member} m WHERE m.segment_id = %s AND m.contact_id = matching.id)"
    )
    return sql, [segment_id, now, *params, segment_id]


def refresh_segment(*, segment: Segment, actor: AbstractBaseUser | None = None) -> Segment:
    """Materialise a dynamic segment's members: add who now matches, drop who no longer
    does, in one transaction, so a fan-out reading the table sees the old or the new
    membership, never half of each."""
    now = timezone.now()
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        if segment.kind == Segment.Kind.DYNAMIC:
            contacts = contacts_matching(segment.rules)
            gone = SegmentMember.objects.filter(segment=segment).exclude(contact_id__in=contacts.order_by().values("id"))
            removed = gone._raw_delete(gone.db)
            sql, params = _insert_members_sql(segment_id=segment.pk, contacts=contacts, now=now)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                added = cursor.rowcount
        else:
            # A static segment only drops members whose contact was deleted or erased.
            gone = SegmentMember.objects.filter(segment=segment).exclude(contact__deleted_at__isnull=True, contact__erased_at__isnull=True)
            removed, added = gone._raw_delete(gone.db), 0
        before = segment.member_count
        segment.member_count = SegmentMember.objects.filter(segment=segment).count()
        segment.refreshed_at = now
        segment.save(update_fields=["member_count", "refreshed_at"])
        record_audit(
            actor=actor,
            verb="refreshed",
            target=segment,
            changes={"members": {"before": before, "after": segment.member_count}, "added": added, "removed": removed},
        )
    return segment


def refresh_dynamic_segments() -> int:
    """The nightly refresh (02:00): every dynamic segment, one transaction each."""
    refreshed = 0
    for segment in Segment.objects.filter(kind=Segment.Kind.DYNAMIC).order_by("pk"):
        refresh_segment(segment=segment)
        refreshed += 1
    return refreshed


def _find_contacts(identifiers: list[str]) -> tuple[dict[str, int], list[str]]:
    emails, others = {}, []
    for raw in identifiers:
        value = raw.strip()
        if not value:
            continue
        if "@" in value:
            try:
                emails[normalise_email(value)] = value
            except ValidationError:
                others.append(value)
        else:
            others.append(value)
    found: dict[str, int] = {}
    live = Contact.objects.filter(deleted_at__isnull=True, erased_at__isnull=True)
    for pk, email in live.filter(email__in=list(emails)).values_list("pk", "email"):
        found[emails[email]] = pk
    for pk, phone, external_id in live.filter(Q(phone__in=others) | Q(external_id__in=others)).values_list("pk", "phone", "external_id"):
        for value in (phone, external_id):
            if value in others:
                found[value] = pk
    unknown = [value for value in [*emails.values(), *others] if value not in found]
    return found, unknown


@transaction.atomic
def add_static_members(*, segment: Segment, identifiers: list[str], actor: AbstractBaseUser | None) -> tuple[int, list[str]]:
    """Add contacts, given by email, phone or external id, to a static segment.
    Returns how many were added and the identifiers no live contact has."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if segment.kind != Segment.Kind.STATIC:
        raise InvalidInput(_("Members are added to static segments only; a dynamic segment follows its rules."))
    if len(identifiers) > 100_000:
        raise InvalidInput(_("Add at most 100,000 contacts at a time."))
    found, unknown = _find_contacts(identifiers)
    existing = set(segment.members.filter(contact_id__in=set(found.values())).values_list("contact_id", flat=True))
    now = timezone.now()
    new_ids = sorted(set(found.values()) - existing)
    if new_ids:
        _audience_changing(segment=segment, actor=actor, change=_("%(count)s members added") % {"count": len(new_ids)})
    SegmentMember.objects.bulk_create([SegmentMember(segment=segment, contact_id=pk, added_at=now) for pk in new_ids], batch_size=2000)
    segment.member_count = segment.members.count()
    segment.refreshed_at = now
    segment.save(update_fields=["member_count", "refreshed_at"])
    record_audit(actor=actor, verb="members added", target=segment, changes={"added": len(new_ids), "unknown": len(unknown)})
    if new_ids:
        _audience_edited(segment=segment, actor=actor, change=_("members added"))
    return len(new_ids), unknown


@transaction.atomic
def remove_static_members(*, segment: Segment, contact_ids: list[int], actor: AbstractBaseUser | None) -> int:
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if segment.kind != Segment.Kind.STATIC:
        raise InvalidInput(_("Members are removed from static segments only."))
    removed, _details = segment.members.filter(contact_id__in=contact_ids).delete()
    if removed:
        _audience_changing(segment=segment, actor=actor, change=_("%(count)s members removed") % {"count": removed})
    segment.member_count = segment.members.count()
    segment.save(update_fields=["member_count"])
    record_audit(actor=actor, verb="members removed", target=segment, changes={"removed": removed})
    return removed


@transaction.atomic
def delete_segment(*, segment: Segment, actor: AbstractBaseUser | None) -> None:
    """Delete a segment. Campaigns that send to it or exclude it lose it, so a submitted,
    approved or scheduled one returns to draft first."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if segment.automations.exists():  # the automation's audience would silently become every contact
        raise NotAllowed(_("Automations use this segment as their audience: change them first."), code="segment_in_use")
    _audience_changing(segment=segment, actor=actor, change=_("it was deleted"))
    record_audit(actor=actor, verb="deleted", target=segment)
    segment.delete()


def segment_contacts(*, segment: Segment) -> QuerySet[Contact]:
    """The members a campaign sends to: the materialised table, live contacts only."""
    return Contact.objects.filter(segment_memberships__segment=segment, deleted_at__isnull=True, erased_at__isnull=True)
