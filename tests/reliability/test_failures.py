"""Failures of what the cluster depends on, with real processes: the database going away
for a minute, an SMTP server that accepts connections and never answers, and a SQLite
database that is full or read-only.

What is simulated, and why:
- The shared PostgreSQL server on 127.0.0.1:5432 is used by other people's tests, so it is
  never stopped. The outage test runs its own throwaway server (initdb + pg_ctl on a free
  port, tests/support/private_postgres.py) and stops it with `pg_ctl -m immediate` — every
  backend killed at once, like a crash — then starts it again a minute later.
- The stalled SMTP server is a loopback socket that accepts and never says a word (no
  greeting), the classic hung MTA; smtplib's timeout is the provider's `timeout` setting.
- A full disk is SQLite's `PRAGMA max_page_count` pinned at the database's current size
  (a write that needs one more page then fails exactly as on a full disk, SQLITE_FULL);
  a read-only database is `PRAGMA query_only=ON` (writes fail with SQLite's read-only
  error). Both are set on the test's own connection, which the API requests use: a tiny
  tmpfs needs mount rights, and a `chmod a-w` copy means nothing to root, who runs CI here.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection

from messaging.models import Channel, OutboxBody, OutboxMessage, Provider
from tests.conftest import IN_CI
from tests.reliability.helpers import WORKERS, drain_until_settled, kick_drains, queue_emails, report_figures, status_counts
from tests.support.cluster import REPO, start_cluster, wait_until
from tests.support.private_postgres import PrivatePostgres, binaries

pytestmark = pytest.mark.reliability
Status = OutboxMessage.Status
OUTAGE_SECONDS = 60


# --- PostgreSQL down for a minute -------------------------------------------------------------------
def _driver(env: dict[str, str], *args: str, timeout: float = 240) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.outbox_driver", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


@pytest.fixture
def private_postgres():
    bin_dir = binaries()
    if bin_dir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    server = PrivatePostgres(bin_dir).init()
    try:
        yield server
    finally:
        server.destroy()


@pytest.mark.postgres  # about PostgreSQL, and a minute and a half long: once, in the PostgreSQL run
def test_postgresql_down_for_a_minute_loses_no_message(private_postgres, start_smtp_sink, tmp_path):
    volume, batch, lease = 4000, 200, 5
    env = {
        **os.environ,
        "DATABASE_URL": private_postgres.url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MAILROOM_KICK_CLUSTER": "1",
        "MAILROOM_Q_WORKERS": str(WORKERS),
        "MAILROOM_LEASE_SECONDS": str(lease),
        "MAILROOM_SEND_BATCH": str(batch),
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True, timeout=180)
    sink = start_smtp_sink(delay=0.004)  # ~250 msg/s per worker, so the outage lands mid-send
    # given 4,000 queued emails and a cluster sending them
    _driver(env, "setup", "--sink-port", str(sink.port), "--messages", str(volume), "--workers", str(WORKERS))
    cluster = start_cluster(env=env, log_path=tmp_path / "cluster.log")
    try:
        wait_until(lambda: sink.accepted() >= volume // 5, timeout=120, what="a fifth of the messages to reach the sink")
        # when the database goes away for a minute, in the middle of the batches
        private_postgres.stop()
        accepted_at_outage = sink.accepted()
        time.sleep(OUTAGE_SECONDS)
        accepted_during_outage = sink.accepted() - accepted_at_outage
        survived = cluster.running
        private_postgres.start()
        # then the same cluster (not a new one) takes up the work again
        drained = _driver(env, "drain", "--workers", str(WORKERS), "--timeout", "180")
        assert cluster.running, f"the cluster exited:\n{cluster.tail()}"
        report = _driver(env, "report")
    finally:
        cluster.kill()
    seen, ids = sink.message_ids(), report["message_ids"]
    duplicates = len(seen) - len(set(seen))
    report_figures(
        "postgresql_down_a_minute",
        messages=volume,
        outage_seconds=OUTAGE_SECONDS,
        accepted_at_outage=accepted_at_outage,
        accepted_during_outage=accepted_during_outage,
        cluster_survived_outage=survived,
        duplicates=duplicates,
        attempts=report["attempts"],
        drain_after_restart_seconds=drained["seconds"],
    )
    assert survived, "the cluster died with the database instead of waiting for it"
    assert report["statuses"] == {Status.SENT: volume}, report["statuses"]
    assert set(seen) == set(ids), "a message never reached the SMTP server"
    # resent only what was in flight when the database went (a batch per worker at most)
    assert duplicates <= WORKERS * batch


# --- an SMTP server that never answers -----------------------------------------------------------------
class SilentSMTP:
    """Accepts TCP connections on loopback and never sends a byte (no 220 greeting)."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.mark.django_db(transaction=True)
def test_a_silent_smtp_server_times_out_and_the_messages_go_out_later(clusters, smtp_sink_process, settings):
    settings.MAILROOM_MAX_ATTEMPTS = 20  # the stall must not use up the attempts
    silent = SilentSMTP()
    provider = Provider.objects.create(
        name="Stalled SMTP",
        channel=Channel.EMAIL,
        kind=Provider.Kind.SMTP,
        priority=1,
        config={"host": "127.0.0.1", "port": silent.port, "timeout": 2},
    )
    try:
        # given 200 queued emails and an SMTP server that accepts and never answers
        queue_emails(200)
        started = time.monotonic()
        cluster = clusters(MAILROOM_RETRY_BACKOFF_SECONDS="1,1,1", MAILROOM_PROVIDER_REST_SECONDS="1", MAILROOM_SEND_BATCH="50")
        kick_drains(WORKERS)

        # when the workers try: each gives up after the timeout and moves on (no hung worker)
        def every_message_tried() -> bool:
            assert cluster.running, cluster.tail()
            return not OutboxMessage.objects.filter(attempts=0).exists()

        wait_until(every_message_tried, timeout=60, what="every message to be tried once")
        first_round = time.monotonic() - started
        # nothing ended (sent, failed): each stalled try became a retry, some being retried now
        assert set(OutboxMessage.objects.values_list("status", flat=True)) <= {Status.QUEUED, Status.SENDING}
        provider.refresh_from_db()
        assert "unreachable" in provider.last_error and ("timed out" in provider.last_error or "closed" in provider.last_error)
        # and once the server answers again (the provider now points at a working one)
        Provider.objects.filter(pk=provider.pk).update(config={"host": "127.0.0.1", "port": smtp_sink_process.port, "timeout": 2})
        drain_until_settled(workers=WORKERS, clusters=[cluster], timeout=90)
    finally:
        silent.close()
    # then every message went out, once, after at least one timed-out try
    assert status_counts() == {Status.SENT: 200}
    seen = smtp_sink_process.message_ids()
    assert len(seen) == len(set(seen)) == 200
    assert not OutboxMessage.objects.filter(attempts__lt=2).exists()
    report_figures("smtp_silent_server", messages=200, smtp_timeout_seconds=2, every_message_tried_once_after=round(first_round, 1))
    assert first_round < 45, "workers hung on the silent server"


# --- full or read-only SQLite --------------------------------------------------------------------------
@pytest.fixture
def sqlite_connection(transactional_db):
    # Not inside a test transaction: SQLite may roll a whole transaction back by itself when
    # the disk fills (SQLITE_FULL), and a request's transaction must be the outermost one, as
    # it is in production, for that to leave the next request a usable connection.
    if connection.vendor != "sqlite":
        pytest.skip("about the embedded SQLite database")
    connection.ensure_connection()
    return connection.connection


@pytest.mark.parametrize("failure", ["disk full", "read-only"])
def test_a_full_or_read_only_sqlite_database_gives_a_clear_error_and_saves_nothing(sqlite_connection, admin_user, failure):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(admin_user)
    contacts = {"email": "ada@example.com", "first_name": "Ada" * 500, "attributes": {"note": "x" * 20_000}}
    before = OutboxMessage.objects.count()
    # given a database that cannot grow by a page (a full disk), or refuses every write
    if failure == "disk full":
        # Pages freed by earlier tests would take the writes without the file growing: none left.
        sqlite_connection.execute("VACUUM")
        assert sqlite_connection.execute("PRAGMA freelist_count").fetchone()[0] == 0
        pages = sqlite_connection.execute("PRAGMA page_count").fetchone()[0]
        sqlite_connection.execute(f"PRAGMA max_page_count={pages}")
    else:
        sqlite_connection.execute("PRAGMA query_only=ON")
    try:
        # when the API is asked to store a contact and a batch of messages
        responses = [
            api.post("/api/v1/contacts/", contacts, format="json"),
            *(
                api.post("/api/v1/messages/", {"to": f"r{n}@example.com", "subject": "Hi", "text": "x" * 4000}, format="json")
                for n in range(40)
            ),
        ]
    finally:
        sqlite_connection.execute("PRAGMA query_only=OFF")
        sqlite_connection.execute("PRAGMA max_page_count=4294967294")
    # then the refusals are a 503 problem that says what is wrong, and nothing half-saved
    refused = [r for r in responses if r.status_code >= 500]
    assert refused, "the database never refused a write: the simulation did not bite"
    for response in refused:
        assert response.status_code == 503 and response["Content-Type"].startswith("application/problem+json")
        assert "disk full or read-only" in response.json()["detail"] and response["Retry-After"] == "60"
    stored = OutboxMessage.objects.count() - before
    assert stored == sum(r.status_code == 201 for r in responses[1:])
    # and every stored message has its body, none without its message (two rows, one transaction)
    assert OutboxBody.objects.count() == OutboxMessage.objects.count()
    assert not OutboxBody.objects.exclude(message_id__in=OutboxMessage.objects.values("pk")).exists()
