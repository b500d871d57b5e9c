"""Limits that hold across workers, and a client address nobody can make up (issue 16, Low).

Rate limits and lockouts were counted in each process's local memory, so N web workers
allowed N times every limit. They now live in a shared cache (the database by default,
Redis when CACHE_URL is set). The client address is REMOTE_ADDR unless
MAILROOM_TRUSTED_PROXIES says which proxies may name it in X-Forwarded-For."""

import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from messaging.delivery.throttle import allow, blocked, client_ip, record_failure
from tests.support.cluster import database_env

COUNT_IN_ANOTHER_PROCESS = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from messaging.delivery.throttle import allow
print(sum(allow(scope="pages", key="shared-test", limit=5, window=3600) for _ in range(3)))
"""


def test_the_default_cache_is_shared_through_the_database():
    assert isinstance(caches["default"], DatabaseCache)
    assert settings.CACHES["default"]["LOCATION"] == "mailroom_cache"


@pytest.mark.django_db(transaction=True)
def test_a_throttle_counter_is_shared_between_two_processes():
    # given another process (another web worker) counting 3 hits on one key, limit 5
    env = {k: v for k, v in __import__("os").environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"} | database_env(connection.settings_dict)
    other = subprocess.run(
        [sys.executable, "-c", COUNT_IN_ANOTHER_PROCESS], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "3"
    # when this process counts 3 more on the same key
    here = [allow(scope="pages", key="shared-test", limit=5, window=3600) for _ in range(3)]
    # then the limit of 5 is reached across both
    assert here == [True, True, False]


@pytest.mark.django_db
def test_a_lockout_lasts_its_whole_window_on_the_database_cache(settings):
    # Django's stock DatabaseCache.incr sets the count again with the default 5-minute
    # timeout, which would end a 15-minute lockout 5 minutes after the last failure.
    limit, window = settings.MAILROOM_RATE_LIMITS["login-username"]
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(limit):
            record_failure(scope="login-username", key="grace")
            clock.shift(timedelta(seconds=30))
        clock.shift(timedelta(minutes=8))
        assert blocked(scope="login-username", key="grace")
        clock.shift(timedelta(seconds=window))
        assert not blocked(scope="login-username", key="grace")


# --- the client address ----------------------------------------------------------------------
def request_from(remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy_setting(settings):
    settings.MAILROOM_TRUSTED_PROXIES = 0
    assert client_ip(request_from("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


@pytest.mark.parametrize("trusted", [1, ["10.0.0.1"], ["10.0.0.0/8"]])
def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(settings, trusted):
    settings.MAILROOM_TRUSTED_PROXIES = trusted
    # the client prepended a made-up address; the proxy appended the one it saw
    assert client_ip(request_from("10.0.0.1", "6.6.6.6, 203.0.113.5")) == "203.0.113.5"
    # garbage where the proxy's entry should be falls back to the proxy itself
    assert client_ip(request_from("10.0.0.1", "not-an-address")) == "10.0.0.1"
    # no header: the peer
    assert client_ip(request_from("10.0.0.1")) == "10.0.0.1"


def test_a_listed_proxy_is_only_trusted_when_it_is_the_peer(settings):
    settings.MAILROOM_TRUSTED_PROXIES = ["10.0.0.1"]
    # someone connecting directly cannot name another address
    assert client_ip(request_from("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


@pytest.mark.django_db
def test_rotating_x_forwarded_for_does_not_escape_the_api_throttle(settings):
    settings.MAILROOM_API_ANON_RATE = "2/min"
    settings.MAILROOM_TRUSTED_PROXIES = 0
    api = APIClient(REMOTE_ADDR="203.0.113.9")
    statuses = [
        api.post("/api/v1/auth/token/", {"username": "x", "password": "y"}, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(4)
    ]
    assert statuses[2:] == [429, 429]
