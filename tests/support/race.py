"""Racing writers for the PostgreSQL concurrency tests: each worker in its own thread, all
released at the same instant, each thread's result (or the exception it raised) collected.
A thread that never returns fails the race instead of shrinking the list of results."""

import threading
from collections.abc import Callable

from django.db import connection


def race(workers: list[Callable[[], object]], *, timeout: float = 120) -> list[object]:
    barrier = threading.Barrier(len(workers))
    results: list[object] = []
    lock = threading.Lock()

    def run(worker: Callable[[], object]) -> None:
        barrier.wait(timeout=timeout)
        try:
            outcome = worker()
        except Exception as error:
            outcome = error
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    pool = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=timeout)
    assert len(results) == len(workers), f"{len(workers) - len(results)} of {len(workers)} threads did not finish"
    return results
