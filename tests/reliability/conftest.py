"""Reliability fixtures: the SMTP sink and django-q2 clusters as real subprocesses on the
test database, drain kicks through the ORM broker, and the figures report.

The tests are `django_db(transaction=True)`: the clusters are other processes, so they
only see committed rows. Fixtures kill every process group they started, pass or fail,
before pytest-django empties the tables.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from messaging.models import Channel, Provider
from tests.reliability.helpers import LEASE_SECONDS, WORKERS
from tests.support.cluster import ProcessGroup, SinkProcess, database_env, start_cluster
from tests.support.smtp_sink import free_port


@pytest.fixture
def start_smtp_sink(tmp_path: Path) -> Iterator[Callable[..., SinkProcess]]:
    """`start_smtp_sink(delay=0.0)` starts an SMTP sink subprocess; all are killed at teardown."""
    started: list[SinkProcess] = []

    def start(*, delay: float = 0.0) -> SinkProcess:
        name = f"sink-{len(started) + 1}"
        sink = SinkProcess(
            port=free_port(), ids_path=tmp_path / f"{name}-ids.txt", log_path=tmp_path / f"{name}.log", env=dict(os.environ), delay=delay
        )
        started.append(sink)
        return sink.start()

    try:
        yield start
    finally:
        for sink in started:
            sink.kill()


@pytest.fixture
def smtp_sink_process(start_smtp_sink: Callable[..., SinkProcess]) -> SinkProcess:
    return start_smtp_sink()


@pytest.fixture
def smtp_provider(transactional_db, smtp_sink_process: SinkProcess) -> Provider:
    return Provider.objects.create(
        name="Sink SMTP",
        channel=Channel.EMAIL,
        kind=Provider.Kind.SMTP,
        priority=1,
        config={"host": "127.0.0.1", "port": smtp_sink_process.port},
    )


@pytest.fixture
def cluster_env(transactional_db) -> dict[str, str]:
    return {
        **os.environ,
        **database_env(connection.settings_dict),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MAILROOM_KICK_CLUSTER": "1",
        "MAILROOM_Q_WORKERS": str(WORKERS),
        "MAILROOM_LEASE_SECONDS": str(LEASE_SECONDS),
        "MAILROOM_SEND_BATCH": str(settings.MAILROOM_SEND_BATCH),
        "MAILROOM_MAX_ATTEMPTS": str(settings.MAILROOM_MAX_ATTEMPTS),
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture
def clusters(cluster_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., ProcessGroup]]:
    """`clusters(**extra_env)` starts one more `manage.py qcluster`; all are SIGKILLed at teardown."""
    started: list[ProcessGroup] = []

    def start(**extra_env: str) -> ProcessGroup:
        cluster = start_cluster(env=cluster_env | extra_env, log_path=tmp_path / f"cluster-{len(started) + 1}.log")
        started.append(cluster)
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.kill()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            for number, cluster in enumerate(started, 1):
                print(f"\n--- cluster {number} log (last lines) ---\n{cluster.tail()}")
