"""Email verification and password-reset links: single use, short-lived, throttled."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from messaging.contacts import create_contact, update_contact
from messaging.delivery import work
from messaging.errors import InvalidInput
from messaging.models import AuditEntry, OutboxMessage
from messaging.secrets import attach_secrets, reveal
from messaging.verification import Throttled, request_password_reset, send_email_verification

pytestmark = pytest.mark.django_db
BASE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = BASE


def link_in(message: OutboxMessage, prefix: str) -> str:
    """The link as the recipient gets it: the stored body only holds a marker (the link is
    sealed, see tests/security/test_secrets_in_messages.py); the sender fills it in."""
    assert prefix not in message.body_text
    attach_secrets(message)
    return re.search(re.escape(BASE) + r"(" + prefix + r"[^\s/]+/)", reveal(message, message.body_text)).group(1)


def csrf_client(url: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.get(url)
    return client


def post(client: Client, url: str, **data):
    return client.post(url, data | {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})


@pytest.fixture
def cluster(monkeypatch, django_capture_on_commit_callbacks):
    """Tasks queued after commit run at once, as the cluster would (arguments through JSON)."""
    import json
    from importlib import import_module

    def run(func: str, **kwargs) -> None:
        module, name = func.rsplit(".", 1)
        getattr(import_module(module), name)(**json.loads(json.dumps(kwargs)))

    monkeypatch.setattr(work, "enqueue_task", run)
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_user("grace", email="grace@staff.test", password="an old pass phrase 1", is_staff=True)


# --- email verification ----------------------------------------------------------------------
def test_a_verification_link_confirms_the_address_once(contact):
    message = send_email_verification(actor=None, contact=contact)
    assert message.priority == OutboxMessage.Priority.TRANSACTIONAL and not message.is_marketing
    assert message.subject == "Confirmez votre adresse e-mail"  # in the contact's language
    url = link_in(message, "/e/verify/")
    assert contact.email not in url and f"/{contact.pk}/" not in url
    client = csrf_client(url)
    # a GET only shows the button (mail scanners follow links)
    contact.refresh_from_db()
    assert contact.email_verified_at is None
    done = post(client, url)
    assert done.status_code == 200 and "Adresse e-mail confirmée" in done.content.decode()
    contact.refresh_from_db()
    assert contact.email_verified_at is not None
    assert AuditEntry.objects.filter(verb="email-verified", target_id=str(contact.pk)).exists()
    # the same link again: used
    again = post(client, url)
    assert again.status_code == 410 and "This link was already used" in again.content.decode()


def test_a_verification_link_expires_and_cannot_be_tampered_with(contact, settings):
    url = link_in(send_email_verification(actor=None, contact=contact), "/e/verify/")
    client = Client()
    with time_machine.travel(timezone.now() + timedelta(hours=settings.MAILROOM_VERIFY_LINK_MAX_AGE_HOURS, minutes=1)):
        assert client.get(url).status_code == 410
    token = url.split("/")[3]
    assert client.get(f"/e/verify/{token[:-3]}abc/").status_code == 400
    assert client.get(f"/e/verify/{token[1:]}/").status_code == 400


def test_a_link_for_an_old_address_does_not_verify_the_new_one(contact):
    url = link_in(send_email_verification(actor=None, contact=contact), "/e/verify/")
    update_contact(actor=None, contact=contact, email="ada.new@example.com")
    assert Client().get(url).status_code == 400
    response = Client().post(url)  # the test client skips the CSRF check: the token alone must refuse
    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.email_verified_at is None


def test_verification_emails_are_throttled_per_address(contact):
    for _ in range(3):
        send_email_verification(actor=None, contact=contact, ip_address="203.0.113.9")
    with pytest.raises(Throttled):
        send_email_verification(actor=None, contact=contact, ip_address="198.51.100.1")
    assert OutboxMessage.objects.filter(metadata__purpose="email_verification").count() == 3


# --- password reset --------------------------------------------------------------------------
def test_a_console_user_resets_a_password_once_through_the_link(staff, cluster):
    client = csrf_client("/e/reset/")
    with cluster():  # the email is sent by a task, after the response
        response = post(client, "/e/reset/", email="GRACE@staff.test")
    assert response.status_code == 200 and "If an account uses this address" in response.content.decode()
    message = OutboxMessage.objects.get(to_address="grace@staff.test")
    assert message.priority == OutboxMessage.Priority.TRANSACTIONAL and "tracked" not in message.metadata
    url = link_in(message, "/e/reset/")
    assert "grace" not in url and f"/{staff.pk}/" not in url
    client.get(url)
    done = post(client, url, new_password1="a brand new pass phrase 2", new_password2="a brand new pass phrase 2")
    assert done.status_code == 200 and "Password changed" in done.content.decode()
    staff.refresh_from_db()
    assert staff.check_password("a brand new pass phrase 2")
    # the link did its job: it cannot set the password again
    reused = post(client, url, new_password1="mallory's pass phrase 3", new_password2="mallory's pass phrase 3")
    assert reused.status_code == 410 and "This link was already used" in reused.content.decode()
    staff.refresh_from_db()
    assert staff.check_password("a brand new pass phrase 2")


def test_the_reset_page_says_the_same_whether_or_not_an_account_exists(staff, cluster):
    client = csrf_client("/e/reset/")
    with cluster():
        known = post(client, "/e/reset/", email="grace@staff.test").content.decode()
        unknown = post(client, "/e/reset/", email="nobody@staff.test").content.decode()
    strip = lambda page: re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)  # noqa: E731
    assert strip(known) == strip(unknown)
    assert OutboxMessage.objects.count() == 1


def test_reset_requests_are_throttled_per_address_and_per_ip(staff):
    for _ in range(3):
        request_password_reset(email="grace@staff.test", ip_address="203.0.113.9")
    with pytest.raises(Throttled):
        request_password_reset(email="grace@staff.test", ip_address="198.51.100.1")
    client = csrf_client("/e/reset/")
    statuses = [post(client, "/e/reset/", email=f"someone{n}@staff.test").status_code for n in range(11)]
    assert statuses == [200] * 10 + [429]  # ten addresses from one IP, then no more
    assert OutboxMessage.objects.count() == 3


def test_a_weak_new_password_is_refused_and_the_link_still_works(staff):
    request_password_reset(email="grace@staff.test")
    url = link_in(OutboxMessage.objects.get(), "/e/reset/")
    client = csrf_client(url)
    weak = post(client, url, new_password1="password", new_password2="password")
    assert weak.status_code == 200 and 'role="alert"' in weak.content.decode()
    assert staff.check_password("an old pass phrase 1")
    assert post(client, url, new_password1="a brand new pass phrase 2", new_password2="a brand new pass phrase 2").status_code == 200


def test_a_reset_link_expires(staff, settings):
    request_password_reset(email="grace@staff.test")
    url = link_in(OutboxMessage.objects.get(), "/e/reset/")
    with time_machine.travel(timezone.now() + timedelta(minutes=settings.MAILROOM_RESET_LINK_MAX_AGE_MINUTES + 1)):
        response = Client().get(url)
    assert response.status_code == 410 and "This link has expired" in response.content.decode()


def test_an_invalid_address_is_refused_before_any_lookup():
    with pytest.raises(InvalidInput):
        request_password_reset(email="not an address")


# --- sending it from the API and the console ------------------------------------------------
def test_the_api_sends_a_verification_link_and_answers_429_when_asked_too_often(contact, marketer, approver):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(marketer)
    url = f"/api/v1/contacts/{contact.pk}/verify-email/"
    first = api.post(url)
    assert first.status_code == 202
    message = OutboxMessage.objects.get(pk=first.json()["message"])
    assert message.to_address == contact.email and message.is_sensitive and link_in(message, "/e/verify/")
    statuses = [api.post(url).status_code for _ in range(10)]
    assert statuses[-1] == 429 and 202 not in statuses[statuses.index(429) :]
    api.force_authenticate(approver)  # may not change contacts
    assert api.post(url).status_code == 403


def test_the_console_action_sends_to_the_unverified_and_counts_the_others(contact, marketer, client):
    verified = create_contact(actor=None, email="grace@example.com")
    verified.email_verified_at = timezone.now()
    verified.save(update_fields=["email_verified_at"])
    phone_only = create_contact(actor=None, phone="+33612345678")
    client.force_login(marketer)
    response = client.post(
        "/admin/messaging/contact/",
        {"action": "send_verification_emails", "_selected_action": [contact.pk, verified.pk, phone_only.pk]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 verification email queued." in text and "2 contacts skipped" in text
    assert list(OutboxMessage.objects.filter(metadata__purpose="email_verification").values_list("to_address", flat=True)) == [
        contact.email
    ]
