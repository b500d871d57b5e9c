"""Running due steps: claim runs with a lease, execute one step per transaction.

Each step's effect (the queued message, the attribute change), its log row and the run's
advance commit together. A worker killed before the commit leaves nothing behind and the
run comes back when its lease expires; killed after it, the step is recorded done. So a
cluster restart between (or during) steps neither skips nor repeats one; the outbox's
dedup key `automation:<run>:<step>` is the second belt.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from marketing.automations.status import held_automation_ids, is_live
from marketing.automations.steps.execution import StepResult, execute_step
from marketing.models import Automation, AutomationRun, AutomationStepLog
from messaging.delivery.outbox import cancel_message
from messaging.delivery.sending import worker_name
from messaging.models import OutboxMessage

logger = logging.getLogger(__name__)

Status = AutomationRun.Status
MAX_STEPS_PER_PASS = 25  # per run and pass; a flow with no waits finishes in one pass


def lease_length() -> timedelta:
    return timedelta(seconds=settings.MAILROOM_LEASE_SECONDS)


def due_runs(*, now):
    runs = AutomationRun.objects.filter(status=Status.ACTIVE, next_run_at__lte=now, automation__state=Automation.State.ACTIVE).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    )
    held = held_automation_ids()
    return runs.exclude(automation_id__in=held) if held else runs


def claim_due_runs(*, limit: int, owner: str) -> list[int]:
    """Lease up to `limit` due runs (PostgreSQL: SKIP LOCKED, so clusters never wait on each other)."""
    now = timezone.now()
    with transaction.atomic():
        rows = due_runs(now=now).order_by("next_run_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        ids = list(rows.values_list("id", flat=True)[:limit])
        if ids:
            AutomationRun.objects.filter(id__in=ids).update(lease_until=now + lease_length(), lease_owner=owner)
    return ids


def end_run(run: AutomationRun, *, status: str, reason: str = "", now=None) -> None:
    """Mark a run finished (the caller holds its row lock) and cancel its messages still queued."""
    run.status, run.ended_at, run.exit_reason = status, now or timezone.now(), reason[:200]
    run.next_run_at, run.lease_until, run.lease_owner = None, None, ""
    if status != Status.COMPLETED:
        for message in OutboxMessage.objects.filter(automation_logs__run=run, status=OutboxMessage.Status.QUEUED).distinct():
            cancel_message(actor=None, message=message, reason=reason or "automation run ended")


def _apply(run: AutomationRun, index: int, step_count: int, result: StepResult, now) -> None:
    if result.end_status:
        end_run(run, status=result.end_status, reason=result.detail, now=now)
        return
    if result.outcome == AutomationStepLog.Outcome.FAILED:
        end_run(run, status=Status.FAILED, reason=result.detail, now=now)
        return
    run.next_step_index = index + 1 if result.next_index is None else result.next_index
    run.next_run_at = result.next_run_at or now
    if run.next_step_index >= step_count and run.next_run_at <= now:
        end_run(run, status=Status.COMPLETED, now=now)


def run_one_step(*, run_id: int, owner: str) -> bool:
    """Execute the run's next step if it is due and still leased to `owner`; True when
    another step may be due right away."""
    now = timezone.now()
    with transaction.atomic():
        run = (
            AutomationRun.objects.select_for_update(of=("self",))
            .select_related("automation", "contact")
            .filter(pk=run_id, lease_owner=owner, status=Status.ACTIVE)
            .first()
        )
        if run is None:
            return False
        if not is_live(run.automation) or run.next_run_at is None or run.next_run_at > now:
            AutomationRun.objects.filter(pk=run.pk).update(lease_until=None, lease_owner="")
            return False
        steps = list(run.automation.steps.order_by("position", "id"))
        index = run.next_step_index
        if index >= len(steps):
            end_run(run, status=Status.COMPLETED, now=now)
            run.save()
            return False
        step = steps[index]
        try:
            with transaction.atomic():
                result = execute_step(run, step, index, now)
        except Exception as error:  # a bug must not wedge the run: it fails with the reason
            logger.exception("automation run %s step %s failed", run.pk, index)
            result = StepResult(AutomationStepLog.Outcome.FAILED, f"unexpected error: {error!r}"[:300])
        AutomationStepLog.objects.create(
            run=run, step_index=index, kind=step.kind, outcome=result.outcome, detail=str(result.detail)[:300], message=result.message
        )
        _apply(run, index, len(steps), result, now)
        more = run.status == Status.ACTIVE and run.next_run_at is not None and run.next_run_at <= now
        if not more:
            run.lease_until, run.lease_owner = None, ""
        run.save()
    logger.debug("automation run %s step %s: %s", run_id, index, result.outcome)
    return more


def run_due_steps(*, limit: int = 200, owner: str | None = None, time_budget: float | None = None) -> int:
    """Claim due runs in batches and advance each as far as it is due; returns steps executed."""
    owner = owner or worker_name()
    deadline = time.monotonic() + time_budget if time_budget else None
    executed = 0
    while True:
        ids = claim_due_runs(limit=limit, owner=owner)
        for run_id in ids:
            for _step in range(MAX_STEPS_PER_PASS):
                executed += 1
                if not run_one_step(run_id=run_id, owner=owner):
                    break
            else:  # still due after the cap: let the next pass continue it
                AutomationRun.objects.filter(pk=run_id, lease_owner=owner).update(lease_until=None, lease_owner="")
        if len(ids) < limit or (deadline is not None and time.monotonic() > deadline):
            return executed
