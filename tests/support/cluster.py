"""Real subprocesses for the reliability suite: a django-q2 cluster (`manage.py qcluster`)
and the SMTP sink (`python -m tests.support.smtp_sink`).

Each runs in its own session, so its process group holds the whole tree (the cluster's
sentinel, pusher, monitor and workers are forked children) and one `os.killpg` stops it
all at once, exactly like a machine losing power. Every wait has a timeout.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[2]


def wait_until[T](condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `condition` until it returns something truthy; raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def database_env(settings_dict: dict[str, Any]) -> dict[str, str]:
    """What a subprocess needs to open the database the test process is using right now
    (the test database, not the one named in the settings file)."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return {"MAILROOM_SQLITE_PATH": str(settings_dict["NAME"]), "DATABASE_URL": ""}
    if engine.endswith(("postgresql", "postgis")):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
        return {"DATABASE_URL": f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"}
    raise ValueError(f"no subprocess database settings for {engine}")


class ProcessGroup:
    """A subprocess started in a new session; `kill()` SIGKILLs its whole process group."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path):
        self.args, self.env, self.log_path = args, env, log_path
        self.popen: subprocess.Popen | None = None
        self.killed = False

    def start(self) -> "ProcessGroup":
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pgid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid  # a session leader's pid is its process group id

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def owns(self, pid: int) -> bool:
        """Whether a live process belongs to this group (e.g. the worker named in a lease).
        After `kill()` nothing does, even while orphaned children wait to be reaped."""
        if self.killed:
            return False
        try:
            return os.getpgid(pid) == self.pgid
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        """SIGKILL every process of the group, then reap the leader. Safe to call twice."""
        if self.popen is None:
            return
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_cluster(*, env: dict[str, str], log_path: Path) -> ProcessGroup:
    """`manage.py qcluster` with the ORM broker, on whatever database `env` names."""
    return ProcessGroup([sys.executable, "manage.py", "qcluster"], env=env, log_path=log_path).start()


class SinkProcess(ProcessGroup):
    """The SMTP sink as a subprocess; each accepted Message-ID is a line of `ids_path`."""

    def __init__(self, *, port: int, ids_path: Path, log_path: Path, env: dict[str, str], delay: float = 0.0):
        self.port, self.ids_path = port, ids_path
        args = [sys.executable, "-m", "tests.support.smtp_sink", "--port", str(port), "--log", str(ids_path), "--delay", str(delay)]
        super().__init__(args, env=env, log_path=log_path)

    def start(self) -> "SinkProcess":
        super().start()
        wait_until(self._accepts_connections, timeout=20, what=f"the SMTP sink on port {self.port}\n{self.tail()}")
        return self

    def _accepts_connections(self) -> bool:
        if not self.running:
            raise RuntimeError(f"the SMTP sink exited:\n{self.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def message_ids(self) -> list[str]:
        """Every Message-ID accepted so far, duplicates included (complete lines only)."""
        if not self.ids_path.exists():
            return []
        data = self.ids_path.read_text()
        return data[: data.rfind("\n") + 1].splitlines()

    def accepted(self) -> int:
        if not self.ids_path.exists():
            return 0
        with self.ids_path.open("rb") as ids:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: ids.read(1 << 16), b""))


def worker_heap_state() -> dict[str, Any]:
    """A task for a cluster to run: what its worker's garbage collector looks like and
    which task modules the worker has imported (tests/reliability/test_worker_heap.py)."""
    import gc

    return {
        "frozen": gc.get_freeze_count(),
        "threshold": list(gc.get_threshold()),
        "task_modules": sorted(
            name for name in sys.modules if name.endswith(".tasks") and name.split(".")[0] in {"messaging", "marketing", "growth"}
        ),
    }
