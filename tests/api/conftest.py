"""API test helpers: clients signed in as each role, API keys, problem assertions."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from messaging.api_keys import create_api_key

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def _fresh_throttles(settings):
    """Throttle counters live in the cache: every test starts from zero (tests/conftest.py
    empties it after each test)."""
    settings.MAILROOM_KICK_CLUSTER = False


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def as_user(db):
    """as_user(user) → an APIClient authenticated as that console user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def api_key(db, admin_user):
    """api_key("Ops") → (ApiKey, token) created through the action, acting with that role."""

    def make(role: str = "Ops", **kwargs):
        created = create_api_key(
            actor=admin_user, name=kwargs.pop("name", f"{role} integration"), role=Group.objects.get(name=role), **kwargs
        )
        return created.key, created.token

    return make


@pytest.fixture
def key_client(api_key):
    def make(role: str = "Ops", **kwargs) -> APIClient:
        _key, token = api_key(role, **kwargs)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {token}")
        return client

    return make


def assert_problem(response, status: int, code: str | None = None) -> dict:
    """The response is an RFC 9457 problem with this status (and code); returns the body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:mailroom:problem:")
    assert body["title"] and body["detail"]
    assert body["instance"] == response.wsgi_request.path
    if code is not None:
        assert body["code"] == code, body
    return body
