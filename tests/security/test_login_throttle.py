"""Console sign-in brute force: repeated failures lock the username and the client IP out
for a while, with a plain form error, and the right password does not get through while
locked (config/login.py)."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"
LOCKED = "Too many failed sign-in attempts"


def sign_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_lock_the_username_even_for_the_right_one(marketer):
    client = Client()
    for _ in range(5):
        response = sign_in(client, "marketer", "guess")
        assert response.status_code == 200 and LOCKED not in response.text
    # the sixth try is refused before the password is looked at, the right one included
    response = sign_in(client, "marketer", "pw-marketer")
    assert response.status_code == 200
    assert LOCKED in response.text and "Wait 15 minutes" in response.text
    assert not signed_in(client)
    # the lock follows the username to another address, and its case does not matter
    other = Client(REMOTE_ADDR="10.0.0.9")
    assert LOCKED in sign_in(other, "MARKETER", "pw-marketer").text
    assert not signed_in(other)


def test_the_lock_ends_after_the_window(marketer):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(5):
            sign_in(client, "marketer", "guess")
        assert LOCKED in sign_in(client, "marketer", "pw-marketer").text
        clock.shift(timedelta(minutes=16))
        response = sign_in(client, "marketer", "pw-marketer")
    assert response.status_code == 302 and signed_in(client)


def test_one_address_spraying_many_usernames_is_locked_out(marketer):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for n in range(20):
        sign_in(client, f"someone{n}", "guess")
    # a username never tried before, with its right password, is refused from that address
    assert LOCKED in sign_in(client, "marketer", "pw-marketer").text
    assert not signed_in(client)
    # while the same person from another address signs in normally
    elsewhere = Client(REMOTE_ADDR="198.51.100.2")
    assert sign_in(elsewhere, "marketer", "pw-marketer").status_code == 302


def test_a_successful_sign_in_clears_the_usernames_count(marketer):
    client = Client()
    for _ in range(4):
        sign_in(client, "marketer", "guess")
    assert sign_in(client, "marketer", "pw-marketer").status_code == 302
    client.logout()
    for _ in range(4):
        sign_in(client, "marketer", "guess")
    assert sign_in(client, "marketer", "pw-marketer").status_code == 302
