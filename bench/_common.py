"""What the benchmarks that start their own processes share: progress lines, stopping a
process group they started, and tidying the work directory at the end of a run.

Imported as `_common` (bench/ is the script's own directory); run_all.py skips it, as it
skips every file whose name starts with "_"."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def say(text: str) -> None:
    print(text, flush=True)


def stop_group(process: subprocess.Popen | None, *, grace: float = 10) -> None:
    """SIGTERM the process group we started (a session leader), SIGKILL it if it lingers."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def start_cluster(workdir: Path, *, warmups: int, name: str = "qcluster") -> subprocess.Popen:
    """`manage.py qcluster` in its own process group (the caller has set Django up; the
    environment carries its settings), logging to workdir/<name>.log. Returns once
    `warmups` heartbeat tasks have run; a cluster that does not come up within a minute is
    stopped and raises RuntimeError."""
    from django_q.models import Success  # Django is set up by the benchmark, after this module is imported
    from django_q.tasks import async_task

    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=REPO,
            env=os.environ.copy(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        tasks = [async_task("messaging.tasks.heartbeat") for _ in range(warmups)]
        deadline = time.monotonic() + 60
        while Success.objects.filter(id__in=tasks).count() < len(tasks):
            if cluster.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not start; see {log_path}")
            time.sleep(0.1)
    except BaseException:
        stop_group(cluster)
        raise
    return cluster


def remove_workdir(workdir: Path, *, keep: bool) -> None:
    """The run's temporary directory goes, unless `--keep` asked to look at it."""
    if keep:
        say(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
