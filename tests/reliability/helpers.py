"""Driving real clusters from a test: queue mail in bulk, kick drains through the ORM broker,
wait until the outbox settles, and report figures to test-results/reliability.json."""

import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_q.models import OrmQ

from messaging.delivery.work import enqueue_task
from messaging.models import Channel, OutboxMessage
from tests.support.cluster import ProcessGroup, wait_until

RESULTS_FILE = Path(settings.BASE_DIR) / "test-results" / "reliability.json"
WORKERS = 2  # per cluster (MAILROOM_Q_WORKERS)
LEASE_SECONDS = 5  # short, so a killed batch comes back within seconds
DRAIN = "messaging.tasks.drain_outbox"

Status = OutboxMessage.Status


# --- driving the clusters ----------------------------------------------------------------------
def queue_emails(count: int, *, prefix: str = "reader") -> None:
    """Queue `count` emails due now in a few statements: the rows `enqueue_message` would write
    (enqueueing 20,000 one by one costs ~20 s and is not what these tests are about)."""
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        (
            OutboxMessage(
                channel=Channel.EMAIL,
                to_address=f"{prefix}{n}@example.com",
                subject=f"Reliability {n}",
                body_text=f"Message {n}",
                body_html=f"<p>Message {n}</p>",
                status=Status.QUEUED,
                next_attempt_at=now,
                max_attempts=settings.MAILROOM_MAX_ATTEMPTS,
            )
            for n in range(count)
        ),
        batch_size=2000,
    )


def kick_drains(count: int) -> None:
    """What a campaign fan-out does: one drain task per worker, through the ORM broker."""
    for _ in range(count):
        enqueue_task(DRAIN)


def status_counts() -> dict[str, int]:
    return dict(OutboxMessage.objects.order_by().values_list("status").annotate(n=Count("id")))


def drain_until_settled(*, workers: int, clusters: list[ProcessGroup], timeout: float, on_tick: Callable[[], None] | None = None) -> float:
    """Keep the clusters fed with drain tasks until no message is queued or sending (a drain
    returns when nothing is due, e.g. while retries wait out their backoff). Returns seconds."""
    started = time.monotonic()
    last_kick = 0.0

    def settled() -> bool:
        nonlocal last_kick
        for cluster in clusters:
            if not cluster.running:
                raise RuntimeError(f"a cluster exited on its own:\n{cluster.tail()}")
        if on_tick is not None:
            on_tick()
        if not OutboxMessage.objects.filter(status__in=[Status.QUEUED, Status.SENDING]).exists():
            return True
        waiting = OrmQ.objects.filter(lock__lte=timezone.now()).exists()  # not yet picked up by a cluster
        if not waiting and time.monotonic() - last_kick > 1:
            kick_drains(workers)
            last_kick = time.monotonic()
        return False

    try:
        wait_until(settled, timeout=timeout, what="every message to leave queued/sending", interval=0.25)
    except TimeoutError as error:
        raise TimeoutError(f"{error}; statuses now: {status_counts()}") from None
    return time.monotonic() - started


class LeaseWatch:
    """Samples which worker processes hold leases while the outbox drains, by cluster: a
    lease owner is "host:pid", and each cluster is one process group."""

    def __init__(self, **clusters: ProcessGroup):
        self.clusters: dict[str, ProcessGroup] = {}
        self.workers: dict[str, set[int]] = {}
        self.largest_in_flight = 0
        for name, cluster in clusters.items():
            self.follow(name, cluster)

    def follow(self, name: str, cluster: ProcessGroup) -> None:
        self.clusters[name], self.workers[name] = cluster, set()

    def __call__(self) -> None:
        owners = Counter(OutboxMessage.objects.filter(status=Status.SENDING).values_list("lease_owner", flat=True))
        in_flight = 0  # leased by a live worker (a killed worker's rows wait for their lease to expire)
        for owner, count in owners.items():
            pid = int(owner.rsplit(":", 1)[1])
            for name, cluster in self.clusters.items():
                if cluster.owns(pid):
                    self.workers[name].add(pid)
                    in_flight += count
        self.largest_in_flight = max(self.largest_in_flight, in_flight)

    def counts(self) -> dict[str, int]:
        return {name: len(pids) for name, pids in self.workers.items()}


# --- figures ------------------------------------------------------------------------------------
def report_figures(name: str, **figures: object) -> None:
    """Print the figures and merge them into test-results/reliability.json (one key per test
    and database, so the SQLite and PostgreSQL runs sit side by side)."""
    key = f"{name}[{connection.vendor}]"
    print(f"\nreliability {key}: {json.dumps(figures)}")
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    try:
        results = json.loads(RESULTS_FILE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        results = {}
    results[key] = {**figures, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    RESULTS_FILE.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
