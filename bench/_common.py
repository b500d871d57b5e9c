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


# --- a run on a temporary PostgreSQL database, in a child process ------------------------
class ServerUnreachable(Exception):
    """The PostgreSQL server cannot be reached (or psycopg is missing): the run is skipped."""


@contextlib.contextmanager
def temporary_database(server: str, name: str, *, label: str):
    """A fresh, empty database `name` on `server` (postgres://user@host:port, the user may
    create databases), dropped on the way out whatever happened (WITH FORCE: a connection
    left behind would block it). Yields the server's version."""
    try:
        import psycopg
    except ImportError as error:
        raise ServerUnreachable("psycopg is not installed") from error
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as admin:
            version = admin.execute("SHOW server_version").fetchone()[0]
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ServerUnreachable(f"PostgreSQL at {server} is unreachable: {first_line}") from error
    try:
        yield version
    finally:
        try:
            with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"{label} dropped the database {name}")
        except psycopg.Error as error:
            say(f"{label} could not drop the database {name}: {error}")


def follow_child(args: list[str], *, out_path: Path, timeout: float, label: str) -> tuple[list[str], bool]:
    """Run a child process group, echo its progress lines as they come (not its JSON line),
    stop it after `timeout` seconds or on the way out (SIGTERM: it unwinds and closes its
    connections and processes). Returns its complete output lines and whether it timed out."""
    child, started, timed_out = None, time.monotonic(), False
    try:
        with out_path.open("wb") as out:
            child = subprocess.Popen(args, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        shown = 0
        while child.poll() is None or shown < len(complete_lines(out_path)):
            lines = complete_lines(out_path)
            for line in lines[shown:]:
                if not line.startswith("{"):
                    say(f"{label} {line}")
            shown = len(lines)
            if child.poll() is None and time.monotonic() - started > timeout:
                say(f"{label} gave up after {time.monotonic() - started:.0f} s")
                timed_out = True
                break
            time.sleep(0.2)
    finally:
        stop_group(child, grace=30)
    return complete_lines(out_path), timed_out


def complete_lines(path: Path) -> list[str]:
    """The complete lines written so far (not one the child is still writing)."""
    return path.read_text(errors="replace").split("\n")[:-1] if path.exists() else []
