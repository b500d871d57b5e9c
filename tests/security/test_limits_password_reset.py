"""Password-reset timing (issue 16): the page took 11-118 ms for an address with an account
and 7-9 ms without, so its timing told which addresses exist. The request now does the
same work either way (check, throttle, queue one task); the account lookup and the email
happen on the cluster after the response."""

import json
import re

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from messaging import tasks
from messaging.delivery import work
from messaging.models import OutboxMessage

pytestmark = pytest.mark.django_db
QUOTED = re.compile(r"'[^']*'|\"s\d+_x\d+\"|\b\d+\b")  # literals, savepoint names, numbers


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False  # no drain kicks: only the work the request asks for


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("grace", email="grace@staff.test", password="an old pass phrase 1", is_staff=True)


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, dict]]:
    """Tasks handed to the cluster (their arguments round-tripped through JSON)."""
    tasks: list[tuple[str, dict]] = []
    monkeypatch.setattr(work, "enqueue_task", lambda func, **kwargs: tasks.append((func, json.loads(json.dumps(kwargs)))))
    return tasks


def ask(client: Client, email: str, capture) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        response = client.post("/e/reset/", {"email": email}, REMOTE_ADDR=f"198.51.100.{len(email)}")
    return response.status_code, [QUOTED.sub("?", query["sql"]) for query in queries.captured_queries]


def test_a_reset_request_does_the_same_work_for_a_known_and_an_unknown_address(staff, queued, django_capture_on_commit_callbacks):
    client = Client()
    known_status, known_sql = ask(client, "grace@staff.test", django_capture_on_commit_callbacks)
    unknown_status, unknown_sql = ask(client, "nobody@staff.test", django_capture_on_commit_callbacks)
    # the same answer, the same queries, and no account looked up during the request
    assert known_status == unknown_status == 200
    assert known_sql == unknown_sql
    assert not any("auth_user" in sql for sql in known_sql)
    assert not OutboxMessage.objects.exists()
    # both queued one task, the same one
    assert [func for func, _kwargs in queued] == ["messaging.tasks.send_password_reset"] * 2
    assert queued[0][1].keys() == queued[1][1].keys()
    # which, on the cluster, emails only the account that exists

    results = [getattr(tasks, func.rsplit(".", 1)[1])(**kwargs) for func, kwargs in queued]
    assert results == [True, False]
    assert list(OutboxMessage.objects.values_list("to_address", flat=True)) == ["grace@staff.test"]
