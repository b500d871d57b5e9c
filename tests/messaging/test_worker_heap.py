"""settle_worker_heap, run by django-q2's post_spawn in each cluster worker: what it
freezes is out of the collector's walks, yet garbage made afterwards is still collected.
(The cluster itself is asked in tests/reliability/test_worker_heap.py.)"""

import gc
import weakref

import pytest
from django_q.signals import post_spawn

from messaging.cluster import WORKER_GC_THRESHOLD


@pytest.fixture
def settled():
    threshold = gc.get_threshold()
    post_spawn.send(sender="django_q", proc_name="Process-1")
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the collector frees it


def test_the_spawn_signal_freezes_the_heap_and_raises_the_young_threshold(settled):
    assert gc.get_freeze_count() > 50_000
    assert gc.get_threshold()[0] == WORKER_GC_THRESHOLD


def test_cycles_made_after_settling_are_still_collected(settled):
    node = Node()
    alive = weakref.ref(node)
    del node
    assert alive() is not None  # the cycle keeps it
    gc.collect()
    assert alive() is None
