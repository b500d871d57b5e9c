"""One lockout for every way in (issue 16, item 8): the JWT token endpoint used to check
passwords without the console's lockout (40 wrong passwords, then a 200 with tokens).
Failures on either path count towards the same username and client-IP lockout."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
TOKEN = "/api/v1/auth/token/"
LOGIN = "/admin/login/?next=/admin/"
LOCKED = "Too many failed sign-in attempts"


def test_forty_wrong_jwt_passwords_then_the_right_one_gets_no_token(marketer):
    api = APIClient()
    statuses = [api.post(TOKEN, {"username": "marketer", "password": f"guess-{n}"}).status_code for n in range(40)]
    assert set(statuses[:5]) == {401}
    assert set(statuses[5:]) == {429}  # locked after the console's 5 failures
    response = api.post(TOKEN, {"username": "marketer", "password": "pw-marketer"})
    assert response.status_code == 429
    assert "access" not in response.json() and "refresh" not in response.json()
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.json()["detail"]
    # the console shares the count: the right password does not get in there either
    console = Client()
    page = console.post(LOGIN, {"username": "marketer", "password": "pw-marketer"})
    assert LOCKED in page.text and "_auth_user_id" not in console.session


def test_wrong_console_passwords_lock_the_token_endpoint_too(marketer):
    console = Client()
    for _ in range(5):
        console.post(LOGIN, {"username": "marketer", "password": "guess"})
    response = APIClient().post(TOKEN, {"username": "Marketer", "password": "pw-marketer"})
    assert response.status_code == 429 and "access" not in response.json()


def test_one_address_spraying_usernames_at_the_token_endpoint_is_locked_out(marketer, settings):
    settings.MAILROOM_API_ANON_RATE = "1000/min"  # the lockout, not the request rate, stops it
    api = APIClient(REMOTE_ADDR="203.0.113.7")
    for n in range(20):
        api.post(TOKEN, {"username": f"someone{n}", "password": "guess"})
    assert api.post(TOKEN, {"username": "marketer", "password": "pw-marketer"}).status_code == 429
    # the same person from elsewhere still gets a token
    elsewhere = APIClient(REMOTE_ADDR="198.51.100.2")
    assert "access" in elsewhere.post(TOKEN, {"username": "marketer", "password": "pw-marketer"}).json()


def test_a_token_after_a_few_failures_clears_the_usernames_count(marketer):
    api = APIClient()
    for _ in range(4):
        api.post(TOKEN, {"username": "marketer", "password": "guess"})
    assert "access" in api.post(TOKEN, {"username": "marketer", "password": "pw-marketer"}).json()
    for _ in range(4):
        api.post(TOKEN, {"username": "marketer", "password": "guess"})
    assert "access" in api.post(TOKEN, {"username": "marketer", "password": "pw-marketer"}).json()
