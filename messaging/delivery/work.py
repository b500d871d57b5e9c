"""The one helper that schedules background work, always after the transaction commits.

Task arguments are plain data (ids, strings), never model instances. Drain kicks are
coalesced: a burst of enqueues in one process asks the cluster for one drain, not one
per message; the outbox table is the real queue and a schedule sweeps it every minute.
A coalesced kick's task looks again until its window closes (`until_kick_window_closes`):
what the window's tail committed has no task of its own.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from messaging.schedules import may_run

logger = logging.getLogger(__name__)

KICK_WINDOW_SECONDS = 1
LOOK_AGAIN_SECONDS = 0.1


def enqueue_task(func: str, **kwargs) -> None:
    from django_q.tasks import async_task

    async_task(func, **kwargs, q_options={"group": func.rsplit(".", 1)[-1], "save": False})


def _check_registered(func: str) -> None:
    if not may_run(func):  # the cluster would refuse it: say so where the mistake is
        raise ImproperlyConfigured(
            f"{func} is not a registered job: call messaging.schedules.register_task({func!r}) in its app's ready()."
        )


def after_commit(func: str, *, coalesce: bool = True, **kwargs) -> None:
    """Run `func(**kwargs)` on the cluster once the current transaction commits. A coalesced
    kick also passes `kicked_at` (epoch seconds), which the task hands to
    `until_kick_window_closes`."""
    _check_registered(func)
    if not settings.MAILROOM_KICK_CLUSTER:
        return
    key = "mailroom:kick:" + func + ":" + ":".join(f"{k}={v}" for k, v in sorted(kwargs.items()))

    def kick() -> None:
        # Coalesced per process (the "local" cache): no database write per enqueue.
        if coalesce and not caches["local"].add(key, 1, timeout=KICK_WINDOW_SECONDS):
            return
        try:
            enqueue_task(func, **kwargs, **({"kicked_at": time.time()} if coalesce else {}))
        except Exception:  # the minute schedule will pick the work up anyway
            logger.exception("could not enqueue %s", func)

    transaction.on_commit(kick)


def until_kick_window_closes(work: Callable[[float], int], *, kicked_at: float | None, time_budget: float) -> int:
    """Run `work(time_budget)` (it does what is due and says how much) and, while the
    coalescing window of the kick that asked for this task is open, look again every
    LOOK_AGAIN_SECONDS; returns how much was done in all.

    Kicks within KICK_WINDOW_SECONDS of one another in a process ask for one task: what was
    committed in the window after this task's kick has no task of its own, and this task,
    which started after that kick, is the one to find it. Without the second look, a receipt
    committed just after a drain had found nothing waited for the minute schedule (26 s, in
    one of ten send benchmarks). A task started late (the cluster busy), or by a schedule
    (no `kicked_at`), looks once: the window closed before it began. The wait is capped at
    one window, whatever `kicked_at` says: a web host's clock ahead of the cluster's (or a
    hand-made schedule) cannot hold a worker for longer.
    """
    started = time.monotonic()
    left = kicked_at + KICK_WINDOW_SECONDS - time.time() if kicked_at is not None else 0.0
    window_closes = started + min(max(left, 0.0), KICK_WINDOW_SECONDS)
    deadline = started + time_budget
    done = 0
    while True:
        looked_at = time.monotonic()
        found = work(max(deadline - looked_at, 0.001))
        done += found
        now = time.monotonic()
        # A look that began after the window closed has seen every commit the window let pass.
        if looked_at >= window_closes or now >= deadline:
            return done
        if not found:
            time.sleep(min(LOOK_AGAIN_SECONDS, max(window_closes - now, 0.0)))


def enqueue_after_commit(func: str, **kwargs) -> None:
    """Run `func(**kwargs)` on the cluster once the current transaction commits, always
    (work a request hands off, unlike the drain kicks above: never skipped or coalesced)."""
    _check_registered(func)

    def enqueue() -> None:
        try:
            enqueue_task(func, **kwargs)
        except Exception:
            logger.exception("could not enqueue %s", func)

    transaction.on_commit(enqueue)
