"""Errors are RFC 9457 problems everywhere under /api/; throttles per key, user and IP."""

import pytest
from rest_framework.test import APIClient

from messaging.api.problems import flatten_errors, register_error_status, status_for
from messaging.errors import InvalidInput, NotAllowed
from messaging.models import Contact, Template
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
CONTACTS = "/api/v1/contacts/"


def test_user_throttle_is_a_429_problem_with_retry_after(settings, as_user, support):
    settings.MAILROOM_API_USER_RATE = "2/min"
    client = as_user(support)
    assert client.get(CONTACTS).status_code == 200
    assert client.get(CONTACTS).status_code == 200
    response = client.get(CONTACTS)
    assert_problem(response, 429, "throttled")
    assert 0 < int(response["Retry-After"]) <= 60


def test_each_api_key_has_its_own_budget_and_may_carry_its_own_rate(settings, api_key):
    settings.MAILROOM_API_KEY_RATE = "100/min"
    _slow, slow_token = api_key("Ops", name="slow", rate="1/min")
    _fast, fast_token = api_key("Ops", name="fast")
    slow, fast = APIClient(), APIClient()
    slow.credentials(HTTP_AUTHORIZATION=f"Api-Key {slow_token}")
    fast.credentials(HTTP_AUTHORIZATION=f"Api-Key {fast_token}")
    assert slow.get(CONTACTS).status_code == 200
    assert_problem(slow.get(CONTACTS), 429)
    assert fast.get(CONTACTS).status_code == 200
    assert fast.get(CONTACTS).status_code == 200


def test_token_endpoint_is_throttled_per_ip(settings, api, support):
    settings.MAILROOM_API_ANON_RATE = "2/min"
    for _ in range(2):
        api.post("/api/v1/auth/token/", {"username": "support", "password": "wrong"})
    assert_problem(api.post("/api/v1/auth/token/", {"username": "support", "password": "pw-support"}), 429)


def test_unknown_api_address_is_a_404_problem(as_user, support):
    response = as_user(support).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


def test_wrong_media_type_is_a_415_problem(as_user, marketer):
    response = as_user(marketer).post(CONTACTS, "email=a@example.com", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")


def test_problem_titles_and_details_are_translated(as_user, marketer):
    response = as_user(marketer).post(CONTACTS, {"email": "nope"}, HTTP_ACCEPT_LANGUAGE="fr")
    body = assert_problem(response, 400, "invalid")
    assert body["title"] == "Requête invalide"
    assert "adresse e-mail" in body["fields"]["email"][0]


def test_domain_error_statuses_come_from_one_table():
    class StateError(NotAllowed):
        pass

    class QuotaError(InvalidInput):
        pass

    assert status_for(StateError("x")) == 409  # inherits its base's status
    register_error_status(QuotaError, 422)
    assert status_for(QuotaError("x")) == 422


def test_nested_errors_are_flattened_to_dotted_paths():
    detail = {"items": [{}, {"topic": ["bad"]}], "non_field_errors": ["whole"], "tags": {"non_field_errors": ["empty"]}}
    assert flatten_errors(detail) == {"items.1.topic": ["bad"], "non_field_errors": ["whole"], "tags": ["empty"]}


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/templates/", {"key": "spring", "name": "Spring", "category": "promotion", "topic": "news\x00letter"}, "topic"),
        (CONTACTS, {"email": "nul@example.com", "attributes": {"plan\x00": "pro"}}, "attributes"),
        (CONTACTS, {"email": "nul@example.com", "tags": ["vip", "a\x00b"]}, "tags.1"),
    ],
)
def test_a_nul_character_anywhere_in_a_body_is_a_400_problem_and_writes_nothing(as_user, marketer, newsletter, url, body, field):
    # PostgreSQL text and jsonb refuse U+0000: this was a 500 from the database (found by schemathesis)

    body_problem = assert_problem(as_user(marketer).post(url, body), 400, "invalid")
    assert list(body_problem["fields"]) == [field]  # the 400 names where the NUL is
    assert "NUL" in body_problem["fields"][field][0]
    assert not Template.objects.filter(key="spring").exists()
    assert not Contact.objects.filter(email="nul@example.com").exists()
