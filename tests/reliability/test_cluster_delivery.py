"""The delivery invariants under real conditions: `manage.py qcluster` subprocesses on the
ORM broker, a real SMTP server subprocess on loopback, SIGKILL of a whole cluster.

DESIGN.md, invariants 1 and 2: a queued message is delivered or ends failed with a reason,
never lost, even when a worker is SIGKILLed mid-batch (duplicates bounded by the messages
in flight at that instant, and reported); two clusters on one PostgreSQL database never
send the same message twice.
"""

import time
from collections import Counter
from itertools import pairwise

import pytest
from django.db.models import Count

from messaging.delivery.outbox import enqueue_message
from messaging.models import Channel, DeliveryAttempt, OutboxMessage, Provider, SandboxMessage, Suppression
from tests.reliability.helpers import (
    LEASE_SECONDS,
    WORKERS,
    LeaseWatch,
    drain_until_settled,
    kick_drains,
    queue_emails,
    report_figures,
    status_counts,
)
from tests.support.cluster import wait_until
from tests.support.smtp_sink import free_port

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

Status = OutboxMessage.Status
VOLUME = 20_000


def email(to: str) -> OutboxMessage:
    return enqueue_message(channel=Channel.EMAIL, to=to, subject="Hello", text="Hi there", html="<p>Hi there</p>")


def sent_through_sink(sink, expected: int) -> tuple[list[str], dict[str, int]]:
    """What the SMTP server accepted (duplicates included), and the outbox's Message-ID → id."""
    seen = sink.message_ids()
    by_message_id = dict(OutboxMessage.objects.order_by().values_list("message_id", "pk"))
    assert len(by_message_id) == expected, "every message carries its own Message-ID"
    return seen, by_message_id


def outbox_after_kill() -> tuple[set[int], int]:
    """The ids leased (in flight) and the count recorded sent, read once they stop changing:
    a worker killed just after sending COMMIT may still have it land a moment later."""
    previous: tuple[set[int], int] | None = None

    def stable() -> tuple[set[int], int] | None:
        nonlocal previous
        current = (
            set(OutboxMessage.objects.filter(status=Status.SENDING).values_list("pk", flat=True)),
            OutboxMessage.objects.filter(status=Status.SENT).count(),
        )
        if current == previous:
            return current
        previous = current
        return None

    return wait_until(stable, timeout=30, interval=0.5, what="the outbox to stop changing after the kill")


def test_sigkill_mid_batch_loses_nothing(clusters, smtp_sink_process, smtp_provider, settings):
    sink = smtp_sink_process
    batch = settings.MAILROOM_SEND_BATCH
    # given 20,000 queued emails and a cluster sending them to a real SMTP server
    queue_emails(VOLUME)
    started = time.monotonic()
    cluster = clusters()
    kick_drains(WORKERS)
    leases = LeaseWatch(killed=cluster)

    # when the whole cluster is SIGKILLed about a quarter of the way through, while batches
    # are leased: a kill that lands between one batch's record and the next claim proves
    # nothing, so that cluster's successor is killed again (each kill is a real crash)
    def a_quarter_accepted_and_leased() -> bool:
        if not cluster.running:
            raise RuntimeError(f"the cluster exited on its own:\n{cluster.tail()}")
        leases()
        return sink.accepted() >= VOLUME // 4 and OutboxMessage.objects.filter(status=Status.SENDING).exists()

    for kill in range(1, 4):
        wait_until(a_quarter_accepted_and_leased, timeout=180, what="the sink to accept a quarter, with batches leased")
        cluster.kill()
        in_flight, recorded_at_kill = outbox_after_kill()
        accepted_at_kill = sink.accepted()
        if in_flight or kill == 3:
            break
        cluster = clusters()
        leases.follow(f"killed-between-batches-{kill}", cluster)
        kick_drains(WORKERS)
    assert in_flight, "the kill must land while batches are leased, or it proves nothing"

    # and a new cluster takes over (the killed batches come back when their lease expires)
    restarted = clusters()
    leases.follow("restarted", restarted)
    kick_drains(WORKERS)
    drain_seconds = drain_until_settled(workers=WORKERS, clusters=[restarted], timeout=240, on_tick=leases)
    elapsed = time.monotonic() - started

    # then nothing is lost: every message is sent, and the SMTP server has every one of them
    assert status_counts() == {Status.SENT: VOLUME}
    seen, by_message_id = sent_through_sink(sink, VOLUME)
    assert set(seen) == set(by_message_id), "the sink saw exactly the outbox's Message-IDs"
    # and the only duplicates are messages that were in flight at the kill
    copies = Counter(seen)
    duplicated = {by_message_id[message_id] for message_id, count in copies.items() if count > 1}
    duplicates = len(seen) - len(copies)
    reclaimed_without_crash = OutboxMessage.objects.exclude(pk__in=in_flight).exclude(attempts=1).count()
    report_figures(
        "sigkill_mid_batch",
        messages=VOLUME,
        workers=WORKERS,
        batch=batch,
        lease_seconds=LEASE_SECONDS,
        accepted_by_sink_at_kill=accepted_at_kill,
        recorded_sent_at_kill=recorded_at_kill,
        in_flight_at_kill=len(in_flight),
        duplicates=duplicates,
        duplicated_messages=len(duplicated),
        reclaimed_without_crash=reclaimed_without_crash,
        workers_seen_leasing=leases.counts(),
        largest_in_flight_seen=leases.largest_in_flight,
        drain_after_restart_seconds=round(drain_seconds, 1),
        total_seconds=round(elapsed, 1),
    )
    assert duplicated <= in_flight
    assert duplicates <= len(in_flight) <= WORKERS * batch
    assert reclaimed_without_crash == 0, "a message nobody was killed over was claimed twice"
    assert not OutboxMessage.objects.filter(pk__in=in_flight, attempts__lt=2).exists(), "killed batches were retaken"


@pytest.mark.postgres
def test_two_clusters_on_postgresql_never_send_twice(clusters, smtp_sink_process, smtp_provider):
    sink = smtp_sink_process
    # given 20,000 queued emails
    queue_emails(VOLUME)
    started = time.monotonic()
    # when two clusters start at the same time on the same database
    first, second = clusters(), clusters()
    kick_drains(2 * WORKERS)
    leases = LeaseWatch(first=first, second=second)
    drain_seconds = drain_until_settled(workers=2 * WORKERS, clusters=[first, second], timeout=240, on_tick=leases)

    # then every message was sent exactly once
    assert status_counts() == {Status.SENT: VOLUME}
    seen, by_message_id = sent_through_sink(sink, VOLUME)
    duplicates = len(seen) - len(set(seen))
    claimed_twice = OutboxMessage.objects.exclude(attempts=1).count()
    report_figures(
        "two_clusters_postgresql",
        messages=VOLUME,
        clusters=2,
        workers_per_cluster=WORKERS,
        lease_seconds=LEASE_SECONDS,
        accepted_by_sink=len(seen),
        duplicates=duplicates,
        claimed_twice=claimed_twice,
        workers_seen_leasing=leases.counts(),
        largest_in_flight_seen=leases.largest_in_flight,
        seconds=round(drain_seconds, 1),
        rate_per_second=round(VOLUME / (time.monotonic() - started), 1),
    )
    assert duplicates == 0
    assert set(seen) == set(by_message_id), "nothing lost: the sink has every message"
    assert claimed_twice == 0
    assert all(leases.counts().values()), "both clusters really took part"


def test_smtp_failures_end_in_the_right_status_with_a_cluster(clusters, smtp_sink_process, smtp_provider, settings):
    settings.MAILROOM_KICK_CLUSTER = True  # enqueue kicks a drain on the cluster after commit
    # given normal, temporarily refused (451) and unknown (550) recipients
    normal = [email(f"reader{n}@example.com") for n in range(20)]
    soft = [email(f"soft-fail-{n}@example.com") for n in range(3)]
    hard = [email(f"hard-fail-{n}@example.com") for n in range(3)]
    # when a cluster with a one-second backoff works through them
    cluster = clusters(MAILROOM_RETRY_BACKOFF_SECONDS="1,1,1")
    seconds = drain_until_settled(workers=WORKERS, clusters=[cluster], timeout=90)

    # then the normal ones are sent and the server has exactly those
    assert set(OutboxMessage.objects.filter(pk__in=[m.pk for m in normal]).values_list("status", flat=True)) == {Status.SENT}
    assert sorted(smtp_sink_process.message_ids()) == sorted(
        OutboxMessage.objects.filter(pk__in=[m.pk for m in normal]).values_list("message_id", flat=True)
    )
    # the 550s failed at once, and their addresses are suppressed as hard bounces
    for message in hard:
        message.refresh_from_db()
        assert message.status == Status.FAILED and message.attempts == 1 and "550" in message.error
        assert message.delivery_attempts.count() == 1
    assert set(Suppression.objects.values_list("address", "reason")) == {(m.to_address, Suppression.Reason.HARD_BOUNCE) for m in hard}
    # the 451s were retried with backoff, then given up after the fourth attempt
    gaps = []
    for message in soft:
        message.refresh_from_db()
        assert message.status == Status.FAILED and message.attempts == 4
        assert message.error.startswith("gave up after 4 attempts") and "451" in message.error
        tries = list(message.delivery_attempts.order_by("created_at").values_list("outcome", "created_at"))
        assert [outcome for outcome, _ in tries] == [DeliveryAttempt.Outcome.TRANSIENT] * 4
        gaps += [(later - earlier).total_seconds() for (_, earlier), (_, later) in pairwise(tries)]
    report_figures(
        "smtp_failures", seconds=round(seconds, 1), shortest_retry_gap=round(min(gaps), 2), longest_retry_gap=round(max(gaps), 2)
    )
    assert min(gaps) >= 0.7, "a retry came back before its backoff (1 s ± 20 %)"


def test_a_refused_smtp_connection_fails_over_to_the_backup_with_a_cluster(clusters, settings):
    settings.MAILROOM_KICK_CLUSTER = True
    # given an SMTP provider on a closed port, and a sandbox behind it
    dead = Provider.objects.create(
        name="Dead SMTP", channel=Channel.EMAIL, kind=Provider.Kind.SMTP, priority=1, config={"host": "127.0.0.1", "port": free_port()}
    )
    backup = Provider.objects.create(name="Backup sandbox", channel=Channel.EMAIL, kind=Provider.Kind.SANDBOX, priority=2)
    messages = [email(f"reader{n}@example.com") for n in range(10)]
    # when a cluster sends them
    cluster = clusters()
    drain_until_settled(workers=WORKERS, clusters=[cluster], timeout=60)
    # then every one went out through the backup
    assert dict(OutboxMessage.objects.order_by().values_list("provider").annotate(n=Count("id"))) == {backup.pk: len(messages)}
    assert status_counts() == {Status.SENT: len(messages)}
    assert SandboxMessage.objects.filter(provider=backup).count() == len(messages)
    dead.refresh_from_db()
    assert dead.consecutive_failures >= 1 and "unreachable" in dead.last_error and dead.sent_count == 0


def test_a_batch_slower_than_its_lease_is_never_sent_twice(clusters, start_smtp_sink):
    """Regression: the worker renewed only the unsent rest of its batch, so messages already
    sent but not yet recorded lost their lease and another worker sent them again."""
    # given a slow SMTP server (20 ms a message) and batches of 200: a batch takes ~4 s,
    # twice the 2 s lease, so the worker must keep renewing the lease of the whole batch
    sink = start_smtp_sink(delay=0.02)
    Provider.objects.create(
        name="Slow SMTP", channel=Channel.EMAIL, kind=Provider.Kind.SMTP, priority=1, config={"host": "127.0.0.1", "port": sink.port}
    )
    queue_emails(600)
    # when a cluster with two workers sends them, nobody being killed
    cluster = clusters(MAILROOM_LEASE_SECONDS="2", MAILROOM_SEND_BATCH="200")
    kick_drains(WORKERS)
    seconds = drain_until_settled(workers=WORKERS, clusters=[cluster], timeout=120)
    # then each message reached the server exactly once
    seen = sink.message_ids()
    duplicates = len(seen) - len(set(seen))
    claimed_twice = OutboxMessage.objects.exclude(attempts=1).count()
    report_figures(
        "batch_slower_than_lease",
        messages=600,
        batch=200,
        lease_seconds=2,
        duplicates=duplicates,
        claimed_twice=claimed_twice,
        seconds=round(seconds, 1),
    )
    assert status_counts() == {Status.SENT: 600}
    assert duplicates == 0 and claimed_twice == 0
    assert len(seen) == 600
