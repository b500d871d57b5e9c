"""The one helper that schedules background work, always after the transaction commits.

Task arguments are plain data (ids, strings), never model instances. Drain kicks are
coalesced: a burst of enqueues in one process asks the cluster for one drain, not one
per message; the outbox table is the real queue and a schedule sweeps it every minute.
"""

import logging

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from messaging.schedules import may_run

logger = logging.getLogger(__name__)

KICK_WINDOW_SECONDS = 1


def enqueue_task(func: str, **kwargs) -> None:
    from django_q.tasks import async_task

    async_task(func, **kwargs, q_options={"group": func.rsplit(".", 1)[-1], "save": False})


def _check_registered(func: str) -> None:
    if not may_run(func):  # the cluster would refuse it: say so where the mistake is
        raise ImproperlyConfigured(
            f"{func} is not a registered job: call messaging.schedules.register_task({func!r}) in its app's ready()."
        )


def after_commit(func: str, *, coalesce: bool = True, **kwargs) -> None:
    """Run `func(**kwargs)` on the cluster once the current transaction commits."""
    _check_registered(func)
    if not settings.MAILROOM_KICK_CLUSTER:
        return
    key = "mailroom:kick:" + func + ":" + ":".join(f"{k}={v}" for k, v in sorted(kwargs.items()))

    def kick() -> None:
        # Coalesced per process (the "local" cache): no database write per enqueue.
        if coalesce and not caches["local"].add(key, 1, timeout=KICK_WINDOW_SECONDS):
            return
        try:
            enqueue_task(func, **kwargs)
        except Exception:  # the minute schedule will pick the work up anyway
            logger.exception("could not enqueue %s", func)

    transaction.on_commit(kick)


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
