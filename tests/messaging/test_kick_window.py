"""Coalesced kicks lose nothing: what is committed in a kick's window, after the task it
asked for has looked and found nothing, is still sent by that task (not by the minute
schedule). Through the real enqueue, on-commit kick and task function; only the hand-off
to django-q's queue is recorded instead of made."""

import time
from importlib import import_module

import pytest

from marketing.automations.background import kick_runner
from messaging import tasks
from messaging.delivery import work
from messaging.delivery.outbox import enqueue_message
from messaging.models import OutboxMessage

pytestmark = pytest.mark.django_db

Status = OutboxMessage.Status


@pytest.fixture
def kicks(settings, monkeypatch) -> list[tuple[str, dict]]:
    """The tasks handed to the cluster, recorded instead of enqueued."""
    settings.MAILROOM_KICK_CLUSTER = True
    handed: list[tuple[str, dict]] = []
    monkeypatch.setattr(work, "enqueue_task", lambda func, **kwargs: handed.append((func, kwargs)))
    return handed


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def receipt(committed, n: int) -> OutboxMessage:
    with committed():
        return enqueue_message(
            channel="email", to=f"buyer{n}@example.com", subject="Receipt", text="Thanks", priority=OutboxMessage.Priority.TRANSACTIONAL
        )


@pytest.fixture
def looks(monkeypatch, committed) -> list[int]:
    """The drain's looks (what each sent); after the first, a third receipt is committed, as
    a web request would while the drain finds nothing."""
    found: list[int] = []
    real = tasks.send_due_messages

    def look(**kwargs) -> int:
        sent = real(**kwargs)
        if not found:
            receipt(committed, 3)
        found.append(sent)
        return sent

    monkeypatch.setattr(tasks, "send_due_messages", look)
    return found


def test_what_a_kick_window_commits_after_its_drain_looked_is_sent_by_that_drain(kicks, looks, committed):
    # given two receipts committed within a second: one kick, the second coalesced into it
    first, second = receipt(committed, 1), receipt(committed, 2)
    assert [func for func, _kwargs in kicks] == ["messaging.tasks.drain_outbox"]
    _func, kwargs = kicks[0]
    assert set(kwargs) == {"channel", "kicked_at"} and abs(kwargs["kicked_at"] - time.time()) < 5
    # when the drain runs and, after its first look, a third receipt commits in the window
    assert tasks.drain_outbox(**kwargs) == 3
    # then that receipt asked for no task of its own, and the drain looked again and sent it
    assert len(kicks) == 1
    assert looks[0] == 2 and sum(looks) == 3 and len(looks) >= 2
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {Status.SENT}
    assert {m.to_address for m in OutboxMessage.objects.all()} == {first.to_address, second.to_address, "buyer3@example.com"}


def test_a_scheduled_drain_looks_once(kicks, looks, committed):
    receipt(committed, 1)
    # the minute schedule's drain has no kick window: one look, the late receipt waits for the next
    assert tasks.drain_outbox() == 1
    assert looks == [1]
    assert OutboxMessage.objects.get(to_address="buyer3@example.com").status == Status.QUEUED


def test_a_drain_started_after_its_window_closed_looks_once(kicks, looks, committed):
    receipt(committed, 1)
    _func, kwargs = kicks[0]
    # the cluster was busy: the task starts two seconds after its kick, its window long closed
    assert tasks.drain_outbox(**kwargs | {"kicked_at": kwargs["kicked_at"] - 2}) == 1
    assert looks == [1]
    assert OutboxMessage.objects.get(to_address="buyer3@example.com").status == Status.QUEUED


def test_a_kick_from_a_clock_ahead_holds_the_worker_one_window_at_most():
    looks = []

    def idle(budget: float) -> int:
        looks.append(time.monotonic())
        return 0

    # a web host whose clock is an hour ahead (or a schedule made by hand with kicked_at)
    work.until_kick_window_closes(idle, kicked_at=time.time() + 3600, time_budget=50)
    assert looks[-1] - looks[0] <= work.KICK_WINDOW_SECONDS + 0.2
    assert len(looks) <= work.KICK_WINDOW_SECONDS / work.LOOK_AGAIN_SECONDS + 2


def test_the_look_again_ends_at_the_time_budget():
    calls = []

    def busy(budget: float) -> int:
        calls.append(budget)
        time.sleep(0.02)
        return 1

    # a budget shorter than the kick window ends it, each look given what is left
    assert work.until_kick_window_closes(busy, kicked_at=time.time(), time_budget=0.1) == len(calls)
    assert 2 <= len(calls) <= 10 and calls[0] == pytest.approx(0.1, abs=0.01) and all(b < 0.1 for b in calls[1:])


def test_every_coalesced_kick_runs_with_the_arguments_it_is_given(kicks, committed, newsletter):
    from messaging.delivery.work import after_commit
    from messaging.webhooks.emit import SEND_TASK

    # given the three kinds of coalesced kick: an outbox drain, the webhook sender, the automation runner
    receipt(committed, 1)
    with committed():
        after_commit(SEND_TASK)
        kick_runner()
    assert sorted(func for func, _kwargs in kicks) == [
        "marketing.tasks.run_automation_steps",
        "messaging.tasks.drain_outbox",
        "messaging.tasks.send_webhooks",
    ]
    # then each task accepts what the kick handed the cluster (kicked_at included) and runs
    for func, kwargs in kicks:
        module, name = func.rsplit(".", 1)
        assert "kicked_at" in kwargs
        assert getattr(import_module(module), name)(**kwargs) >= 0
    assert OutboxMessage.objects.get().status == Status.SENT
