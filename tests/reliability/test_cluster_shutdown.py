"""Stopping the cluster the way the Procfile runs it (`manage.py run_cluster`, started by
honcho in its own session): SIGTERM or SIGINT, to the whole process group as honcho and a
terminal send them or to the main process alone, stop it and every process it forked within
10 s, letting the batch in progress finish; and when whoever started it (honcho, a shell)
is SIGKILLed, the cluster notices and exits within 10 s instead of running on orphaned.

Orphans are checked by pid: every process of the cluster's tree is noted (with its kernel
start time, so a recycled pid does not count) before the signal, and each must be gone after.
"""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from messaging.cluster import _obey_the_sentinel_only, process_start_time
from messaging.models import Channel, OutboxMessage, Provider
from tests.reliability.helpers import WORKERS, kick_drains, queue_emails, report_figures, status_counts
from tests.support.cluster import REPO, ProcessGroup, wait_until

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

LIMIT = 10.0  # seconds, from the signal to the last process of the cluster gone
HONCHO = Path(sys.executable).parent / "honcho"


def procfile_command(name: str) -> list[str]:
    """The Procfile's command for `name`, with this interpreter for `.venv/bin/python`."""
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            args = shlex.split(line.split(":", 1)[1])
            return [sys.executable if arg == ".venv/bin/python" else arg for arg in args]
    raise LookupError(f"no {name!r} in the Procfile")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def tree(pid: int) -> dict[int, str]:
    """{pid: start time} of `pid` and all its descendants that are alive now."""
    alive, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if (started := process_start_time(current)) is not None:
            alive[current] = started
            todo.extend(children_of(current))
    return alive


def survivors(processes: dict[int, str]) -> list[int]:
    return [pid for pid, started in processes.items() if process_start_time(pid) == started]


def cluster_processes(main: int) -> dict[int, str]:
    """The cluster's tree once it is up: main, sentinel, monitor, pusher and the workers."""
    return wait_until(lambda: (found := tree(main)) and len(found) >= WORKERS + 4 and found, timeout=60, what="the cluster's processes")


def wait_gone(processes: dict[int, str], *, since: float) -> float:
    """Seconds from `since` until none of `processes` is alive (raises past 3x the limit)."""
    wait_until(
        lambda: not survivors(processes), timeout=3 * LIMIT, what=f"the cluster to exit; alive: {survivors(processes)}", interval=0.05
    )
    return time.monotonic() - since


def start_procfile_cluster(env: dict[str, str], tmp_path: Path) -> ProcessGroup:
    return ProcessGroup(procfile_command("cluster"), env=env, log_path=tmp_path / "cluster.log").start()


@pytest.fixture
def started(tmp_path):
    """Process groups a test starts; SIGKILLed at teardown, pass or fail."""
    groups: list[ProcessGroup] = []
    yield groups
    for group in groups:
        group.kill()


def test_the_procfile_runs_the_cluster_that_stops_on_signals():
    assert procfile_command("cluster")[1:] == ["manage.py", "run_cluster"]


@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGTERM, True), (signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGINT, False)],
    ids=["SIGTERM-group (honcho, systemd)", "SIGINT-group (Ctrl-C)", "SIGTERM-main (kill pid)", "SIGINT-main"],
)
def test_a_stop_signal_stops_the_cluster_and_all_its_processes_within_10_s(cluster_env, tmp_path, started, signum, to_group):
    # given the cluster as the Procfile starts it, all its processes up
    cluster = start_procfile_cluster(cluster_env, tmp_path)
    started.append(cluster)
    processes = cluster_processes(cluster.pgid)
    # when it is signalled
    sent_at = time.monotonic()
    (os.killpg if to_group else os.kill)(cluster.pgid, signum)
    cluster.popen.wait(timeout=3 * LIMIT)
    # then it exits cleanly, and no process of its tree is left, within 10 s
    elapsed = wait_gone(processes, since=sent_at)
    assert cluster.popen.returncode == 0, cluster.tail()
    assert "The cluster stopped in" in cluster.tail()
    report_figures(f"cluster_stop_{signal.Signals(signum).name}_{'group' if to_group else 'main'}", seconds=round(elapsed, 2))
    assert elapsed < LIMIT


def test_a_sigterm_lets_the_batch_in_progress_finish(cluster_env, tmp_path, started, start_smtp_sink):
    # given a batch of 10 emails being sent to a slow SMTP server (0.3 s a message)
    sink = start_smtp_sink(delay=0.3)
    Provider.objects.create(
        name="Slow SMTP", channel=Channel.EMAIL, kind=Provider.Kind.SMTP, priority=1, config={"host": "127.0.0.1", "port": sink.port}
    )
    queue_emails(10)
    cluster = start_procfile_cluster(cluster_env | {"MAILROOM_SEND_BATCH": "10"}, tmp_path)
    started.append(cluster)
    processes = cluster_processes(cluster.pgid)
    kick_drains(1)
    wait_until(lambda: sink.accepted() >= 1, timeout=60, what=f"the batch to start\n{cluster.tail()}")
    # when honcho stops it (SIGTERM to the group) in the middle of the batch
    sent_at = time.monotonic()
    os.killpg(cluster.pgid, signal.SIGTERM)
    accepted_then = sink.accepted()
    cluster.popen.wait(timeout=3 * LIMIT)
    elapsed = wait_gone(processes, since=sent_at)
    # then the batch was finished first: every message sent, once, none left leased
    assert accepted_then < 10, "the batch was over before the signal: nothing proven"
    assert status_counts() == {OutboxMessage.Status.SENT: 10}, cluster.tail()
    seen = sink.message_ids()
    assert len(seen) == len(set(seen)) == 10
    report_figures("cluster_stop_mid_batch", seconds=round(elapsed, 2), sent_before_signal=accepted_then)
    assert elapsed < LIMIT


def test_a_killed_main_process_takes_the_sentinel_and_workers_with_it(cluster_env, tmp_path, started):
    cluster = start_procfile_cluster(cluster_env, tmp_path)
    started.append(cluster)
    processes = cluster_processes(cluster.pgid)
    # when only the main process is SIGKILLed (nothing can be handled)
    killed_at = time.monotonic()
    os.kill(cluster.pgid, signal.SIGKILL)
    cluster.popen.wait(timeout=LIMIT)
    # then the kernel kills its children in turn (PR_SET_PDEATHSIG): no orphan left
    elapsed = wait_gone(processes, since=killed_at)
    report_figures("cluster_main_killed", seconds=round(elapsed, 2))
    assert elapsed < LIMIT


def test_the_cluster_exits_when_the_shell_that_started_it_is_killed(cluster_env, tmp_path, started):
    # given a shell that runs the cluster and waits for it (`; true` keeps sh from exec-ing it)
    shell = ProcessGroup(
        ["/bin/sh", "-c", shlex.join(procfile_command("cluster")) + "; true"], env=cluster_env, log_path=tmp_path / "sh.log"
    )
    started.append(shell.start())
    main = wait_until(lambda: children_of(shell.pgid), timeout=30, what="the cluster under the shell")[0]
    processes = cluster_processes(main)
    # when the shell is SIGKILLed
    killed_at = time.monotonic()
    os.kill(shell.pgid, signal.SIGKILL)
    shell.popen.wait(timeout=LIMIT)
    # then the cluster notices, stops, and leaves nothing behind
    elapsed = wait_gone(processes, since=killed_at)
    assert "is gone" in shell.tail(), shell.tail()
    report_figures("cluster_parent_shell_killed", seconds=round(elapsed, 2))
    assert elapsed < LIMIT


def test_the_cluster_exits_when_honcho_is_killed(cluster_env, tmp_path, started):
    # given honcho running the Procfile's cluster line (honcho gives it a session of its own)
    procfile = tmp_path / "Procfile"
    procfile.write_text("cluster: " + shlex.join(procfile_command("cluster")) + "\n")
    honcho = ProcessGroup([str(HONCHO), "start", "-f", str(procfile), "-d", str(REPO)], env=cluster_env, log_path=tmp_path / "honcho.log")
    started.append(honcho.start())

    def cluster_main() -> int | None:
        for pid in tree(honcho.pgid):
            try:
                if b"run_cluster" in Path(f"/proc/{pid}/cmdline").read_bytes() and os.getpgid(pid) == pid:
                    return pid
            except (OSError, ProcessLookupError):
                continue
        return None

    main = wait_until(cluster_main, timeout=30, what=f"the cluster under honcho\n{honcho.tail()}")
    processes = cluster_processes(main)
    # when honcho itself is SIGKILLed (its runner process and the cluster live on, orphaned)
    killed_at = time.monotonic()
    os.kill(honcho.pgid, signal.SIGKILL)
    # then the cluster notices and exits with every process it forked (what it says on the
    # way out went to honcho's runner, which has no honcho left to print it)
    try:
        elapsed = wait_gone(processes, since=killed_at)
    finally:
        for leftover in survivors(tree(honcho.pgid)) + survivors(processes):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(main, signal.SIGKILL)
    report_figures("cluster_parent_honcho_killed", seconds=round(elapsed, 2))
    assert elapsed < LIMIT


def _worker_like(ready) -> None:
    """A process set up like a cluster worker: SIGTERM blocked, the post_spawn thread on."""

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    _obey_the_sentinel_only()
    ready.set()
    time.sleep(60)


def test_a_worker_ignores_a_stray_sigterm_but_obeys_its_sentinels():
    import multiprocessing

    context = multiprocessing.get_context("fork")
    ready = context.Event()
    worker = context.Process(target=_worker_like, args=(ready,), daemon=True)
    worker.start()
    try:
        assert ready.wait(20)
        # a SIGTERM from anyone else (here a sibling process, like honcho's to the group) is ignored
        subprocess.run(["kill", "-TERM", str(worker.pid)], check=True)
        worker.join(1.5)
        assert worker.is_alive()
        # the parent's (the sentinel's terminate() of a worker stuck past the timeout) kills it
        worker.terminate()
        worker.join(5)
        assert worker.exitcode == -signal.SIGKILL
    finally:
        if worker.is_alive():
            worker.kill()
