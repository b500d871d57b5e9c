"""A django-q2 cluster that stops when it is told to, and does not outlive whoever started it.

`manage.py qcluster` alone has three problems (django_q/cluster.py):

- Its sentinel, pusher, monitor and workers keep SIGTERM at its default action and share the
  parent's process group. Honcho, systemd and a terminal send the signal to the whole group,
  so every child dies on the spot (a batch cut in half, results unsaved) while the parent's
  handler waits for a sentinel that is already dead: the process hangs until honcho's SIGKILL.
- Nothing watches the parent. When honcho (or the shell) is SIGKILLed the cluster runs on,
  orphaned; when the cluster's own main process is SIGKILLed, the sentinel and workers do.
- `Cluster.stop()` joins the sentinel with no time limit.

`supervise_cluster` runs django-q2's own `Cluster` and fixes those from outside it:

- Its children are born with SIGTERM and SIGINT blocked (the mask is inherited through
  fork), so a signal to the group reaches this process only; it sets the cluster's stop
  event, which lets the workers finish the task in hand, saves the results and exits.
- Every child asks the kernel for SIGKILL when its parent dies (Linux `PR_SET_PDEATHSIG`),
  so a killed main process or sentinel takes its children with it.
- The main process notes its ancestors (parent, honcho, the shell, ...) when it starts and
  stops the cluster as soon as one of them is gone.
- The stop has a deadline (`MAILROOM_CLUSTER_STOP_SECONDS`); past it the sentinel is
  SIGKILLed and its children follow. A message in a batch cut short this way is not lost:
  its lease expires and another drain sends it.
- The sentinel's own SIGTERM to a worker stuck past the task timeout still kills it: a
  thread in each worker waits for SIGTERM and obeys it when it comes from the sentinel.
"""

import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.utils.module_loading import autodiscover_modules

logger = logging.getLogger(__name__)

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 0.5
# A worker's youngest generation is collected after this many new container objects (Python's
# default: 700). A send batch holds 500 messages and their dicts until it is recorded, so
# most young collections found nothing to free and moved the batch up a generation.
WORKER_GC_THRESHOLD = 10_000


# --- who started us -----------------------------------------------------------------------
def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (so a recycled pid is not mistaken for the old
    process), or None when there is no such process, or it is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
    if fields[0] in {"Z", "X"}:
        return None
    return fields[19]  # field 22 of proc(5): starttime


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def ancestors(pid: int | None = None) -> list[tuple[int, str]]:
    """(pid, start time) of every ancestor of `pid` (default: this process) below pid 1."""
    chain: list[tuple[int, str]] = []
    current = os.getpid() if pid is None else pid
    while (parent := parent_of(current)) and parent > 1:
        started = process_start_time(parent)
        if started is None:
            break
        chain.append((parent, started))
        current = parent
    return chain


def lost_ancestor(chain: list[tuple[int, str]], first_parent: int) -> int | None:
    """The pid of the first ancestor that has gone since `chain` was taken, if any."""
    if os.getppid() != first_parent:
        return first_parent
    for pid, started in chain:
        if process_start_time(pid) != started:
            return pid
    return None


# --- the cluster's children ---------------------------------------------------------------
def _die_with_parent(_registered: object) -> None:
    """Runs in every process multiprocessing forks from here (sentinel, then through it the
    workers, pusher and monitor): SIGKILL me when the process that forked me dies."""
    if sys.platform != "linux":
        return
    parent = multiprocessing.parent_process()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent.pid:  # it died before the prctl
        os._exit(1)


class _AfterFork:
    """multiprocessing keeps after-fork hooks in a weak registry: this object keeps ours."""


_AFTER_FORK = _AfterFork()


def _obey_the_sentinel_only(**_kwargs) -> None:
    """django-q2's post_spawn, in each worker: SIGTERM stays blocked (a signal to the whole
    group must not cut a task short), but the sentinel's terminate() of a worker stuck past
    the task timeout still works."""

    def wait_for_sigterm() -> None:
        sentinel = os.getppid()
        while True:
            info = signal.sigwaitinfo({signal.SIGTERM})
            if info.si_pid == sentinel:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_for_sigterm, name="sigterm-from-sentinel", daemon=True).start()


def settle_worker_heap(**_kwargs) -> None:
    """django-q2's post_spawn, in each worker (`qcluster` and `run_cluster` alike): the
    apps' task modules are imported now, not by the first task (a first drain paid for
    importing the whole send path); then what the worker holds (Django, the apps, their
    modules: ~150,000 objects) is frozen out of the cyclic garbage collector's reach, and
    young collections run less often.

    Measured with py-spy on a sending cluster worker (bench/send_throughput.py): the
    collector's share of its CPU 6.6 % → 0.2 %, nearly all of it full collections walking
    the whole inherited heap again, though none of it is ever garbage. Cycles made while
    working are still collected."""
    autodiscover_modules("tasks")
    gc.collect()  # nothing already garbage is frozen for good
    gc.freeze()
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])


# --- the main process ---------------------------------------------------------------------
def supervise_cluster(*, stop_seconds: float, watch_parents: bool = True, say: Callable[[str], None] = logger.info) -> int:
    """Run a django-q2 cluster until a stop signal, the death of an ancestor, or the
    sentinel's own exit; then stop it within `stop_seconds`. Returns the exit status."""
    from django_q.cluster import Cluster
    from django_q.signals import post_spawn

    multiprocessing.util.register_after_fork(_AFTER_FORK, _die_with_parent)
    post_spawn.connect(_obey_the_sentinel_only, dispatch_uid="mailroom-obey-the-sentinel-only")

    first_parent, chain = os.getppid(), ancestors() if watch_parents else []
    stop = threading.Event()
    reason: list[str] = []

    def request_stop(signum: int, _frame: object) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # inherited by every child
    cluster = Cluster()  # installs django-q2's handlers, replaced right below
    for signum in STOP_SIGNALS:
        signal.signal(signum, request_stop)
    try:
        cluster.start()
    finally:
        # A signal that came while the cluster started was kept pending: it is handled now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    while not stop.is_set():
        if not cluster.sentinel.is_alive():
            say(f"The cluster's sentinel exited (code {cluster.sentinel.exitcode}).")
            return 1
        if watch_parents and (gone := lost_ancestor(chain, first_parent)):
            reason.append(f"process {gone} that started the cluster is gone")
            break
        stop.wait(PARENT_CHECK_SECONDS)

    say(f"Stopping the cluster ({reason[0]}); the tasks in progress get {stop_seconds:g} s to finish.")
    started = time.monotonic()
    cluster.stop_event.set()
    cluster.sentinel.join(stop_seconds)
    if cluster.sentinel.is_alive():
        say(f"The cluster did not stop within {stop_seconds:g} s: killing it (the leases bring its batches back).")
        cluster.sentinel.kill()  # its children get SIGKILL from the kernel (PR_SET_PDEATHSIG)
        cluster.sentinel.join(2)
        return 1
    say(f"The cluster stopped in {time.monotonic() - started:.1f} s.")
    return 0
