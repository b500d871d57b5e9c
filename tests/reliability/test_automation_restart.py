"""Automation steps across a cluster restart (real `manage.py qcluster` subprocesses on the
ORM broker): a cluster SIGKILLed while a run waits between steps, then a new cluster,
neither skips nor repeats a step. Runner passes are kicked every second while waiting, so
two workers race for the same due runs the whole time."""

import time
from collections import Counter

import pytest

from marketing.automations.actions import activate_automation, create_automation
from marketing.events import track_event
from marketing.models import AutomationRun, AutomationStepLog
from messaging.contacts import create_contact
from messaging.content.catalog import sync_catalog
from messaging.delivery.work import enqueue_task
from messaging.models import OutboxMessage, SandboxMessage, Topic
from messaging.schedules import ensure_schedules
from tests.reliability.helpers import report_figures
from tests.support.cluster import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

CONTACTS = 20
WAIT_SECONDS = 15
RUN_TASK = "marketing.tasks.run_automation_steps"


def kick_until(condition, *, timeout: float, what: str):
    def kicked():
        enqueue_task(RUN_TASK)
        enqueue_task("messaging.tasks.drain_outbox")
        return condition()

    return wait_until(kicked, timeout=timeout, interval=1.0, what=what)


def test_a_cluster_killed_between_steps_neither_skips_nor_repeats_one(clusters, settings):
    # given a three-send flow with waits, and 20 contacts entering it
    Topic.objects.create(key="account", name="Account", kind=Topic.Kind.TRANSACTIONAL)
    sync_catalog()
    ensure_schedules()
    flow = create_automation(
        actor=None,
        name="Receipt, invoice, activation",
        trigger_type="event",
        trigger={"events": ["paid"]},
        is_transactional=True,
        steps=[
            {"kind": "send", "config": {"template": "payment-confirmation"}},
            {"kind": "wait", "config": {"seconds": WAIT_SECONDS}},
            {"kind": "send", "config": {"template": "invoice"}},
            {"kind": "wait", "config": {"seconds": WAIT_SECONDS}},
            {"kind": "send", "config": {"template": "account-activation"}},
        ],
    )
    activate_automation(actor=None, automation=flow)
    first = clusters()
    started = time.monotonic()
    for n in range(CONTACTS):
        track_event(contact=create_contact(actor=None, email=f"buyer{n}@example.com"), name="paid", idempotency_key=f"paid-{n}")

    # when every run has done its first send and is waiting, the cluster is SIGKILLed. Waiting
    # means the outbox has recorded every first message as sent: the sandbox holds a message
    # a moment before its outcome is written, and a SIGKILL in that moment sends the batch in
    # flight again (at least once, by design: tests/reliability/test_cluster_delivery.py)
    def all_first_sends() -> bool:
        return (
            AutomationStepLog.objects.filter(step_index=0).count() == CONTACTS
            and OutboxMessage.objects.filter(status="sent").count() >= CONTACTS
            and SandboxMessage.objects.count() >= CONTACTS
        )

    kick_until(all_first_sends, timeout=90, what="the first step of every run")
    first.kill()
    killed_after = time.monotonic() - started
    mid = dict(Counter(AutomationRun.objects.values_list("next_step_index", flat=True)))
    # and a new cluster starts once the wait is over
    time.sleep(WAIT_SECONDS)
    clusters()

    def all_completed() -> bool:
        return (
            AutomationRun.objects.filter(status="completed").count() == CONTACTS
            and not OutboxMessage.objects.exclude(status="sent").exists()
            and OutboxMessage.objects.count() == 3 * CONTACTS
        )

    kick_until(all_completed, timeout=180, what="every run to complete after the restart")

    # then each run executed each step exactly once, and each contact got each message once
    per_step = Counter(AutomationStepLog.objects.values_list("run_id", "step_index"))
    assert set(per_step.values()) == {1} and len(per_step) == CONTACTS * 5
    delivered = Counter(SandboxMessage.objects.values_list("to_address", "subject"))
    assert len(delivered) == 3 * CONTACTS and set(delivered.values()) == {1}
    report_figures(
        "automation_restart",
        runs=CONTACTS,
        steps_logged=sum(per_step.values()),
        repeated_steps=sum(n - 1 for n in per_step.values()),
        skipped_steps=CONTACTS * 5 - len(per_step),
        duplicate_deliveries=sum(n - 1 for n in delivered.values()),
        next_step_at_kill=mid,
        killed_after_s=round(killed_after, 1),
        total_s=round(time.monotonic() - started, 1),
    )
