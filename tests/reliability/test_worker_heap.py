"""A cluster worker settles its heap when it starts (messaging.cluster.settle_worker_heap):
the apps' task modules imported, everything it holds frozen out of the garbage collector's
walks, young collections rarer. Asked of a real `manage.py qcluster` worker, through a task."""

import pytest
from django_q.tasks import async_task, result

from messaging import schedules
from messaging.cluster import WORKER_GC_THRESHOLD
from tests.support.cluster import wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


ASK = "tests.support.cluster.worker_heap_state"


def test_a_cluster_worker_starts_with_its_heap_frozen_and_its_task_modules_loaded(clusters, monkeypatch):
    monkeypatch.setattr(schedules, "TASKS", schedules.TASKS | {ASK})  # the enqueue guard lets this one through
    clusters()
    task_id = async_task(ASK)
    state = wait_until(lambda: result(task_id), timeout=60, what="the worker's answer")
    assert state["frozen"] > 50_000  # Django and the apps: ~150,000 objects
    assert state["threshold"][0] == WORKER_GC_THRESHOLD
    assert {"growth.tasks", "marketing.tasks", "messaging.tasks"} <= set(state["task_modules"])
