"""Push through FCM HTTP v1, against two real local HTTP servers: Google's token endpoint
(which checks the signed service-account assertion, as Google does) and FCM itself. A contact
gets the notification on every device; dead tokens are pruned from the contact."""

import json
from datetime import timedelta
from urllib.parse import parse_qs

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone

from messaging.contacts import create_contact
from messaging.delivery.outbox import enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.models import AuditEntry, DeliveryAttempt, DeliveryEvent, OutboxMessage, Provider, Suppression
from messaging.providers.fcm import SCOPE, forget_cached_tokens
from tests.support.fcm import PROJECT, service_account
from tests.support.local_http import LocalServer, Request
from tests.support.smtp_sink import free_port

pytestmark = pytest.mark.django_db
Status = OutboxMessage.Status
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # google-auth signs for Google's endpoint, wherever token_uri points


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_FAILOVER_AFTER = 99
    forget_cached_tokens()
    yield
    forget_cached_tokens()


class TokenEndpoint:
    """Answers the JWT-bearer grant after verifying the assertion with the account's public key."""

    def __init__(self, public_key):
        self.public_key, self.issued = public_key, []

    def __call__(self, request: Request):
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        try:
            claims = jwt.decode(form["assertion"], self.public_key, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE)
        except jwt.InvalidTokenError as error:
            return 400, {"error": "invalid_grant", "error_description": str(error)}
        if claims["scope"] != SCOPE or claims["iss"] != "push@mailroom-demo.iam.gserviceaccount.com":
            return 400, {"error": "invalid_scope"}
        token = f"ya29.local-{len(self.issued) + 1}"
        self.issued.append(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


@pytest.fixture
def token_endpoint(key):
    endpoint = TokenEndpoint(key.public_key())
    with LocalServer(endpoint) as server:
        endpoint.url = server.url + "/token"
        server.endpoint = endpoint
        yield server


class FCM:
    """FCM v1: answers per device token from `answers`, else accepts it."""

    def __init__(self):
        self.answers: dict[str, tuple[int, dict]] = {}

    def __call__(self, request: Request):
        token = request.json()["message"]["token"]
        if token in self.answers:
            return self.answers[token]
        return 200, {"name": f"projects/{PROJECT}/messages/{token}-ok"}


def fcm_error(status: int, code: str, message: str, error_code: str | None = None) -> tuple[int, dict]:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}] if error_code else []
    return status, {"error": {"code": status, "message": message, "status": code, "details": details}}


@pytest.fixture
def fcm():
    answers = FCM()
    with LocalServer(answers) as server:
        server.fcm = answers
        yield server


@pytest.fixture
def provider(settings, key, token_endpoint, fcm):
    settings.MAILROOM_SECRETS = {"FCM": service_account(key, token_endpoint.endpoint.url)}
    return Provider.objects.create(name="FCM", channel="push", kind="http", config={"url": fcm.url, "service_account_secret": "FCM"})


@pytest.fixture
def phone_owner(db):
    return create_contact(actor=None, email="ada@example.com", first_name="Ada", push_tokens=["phone", "tablet", "laptop"])


def refreshed(message: OutboxMessage) -> OutboxMessage:
    message.refresh_from_db()
    return message


def test_fcm_v1_body_and_a_bearer_token_from_the_service_account(provider, fcm, token_endpoint, phone_owner):
    phone_owner.push_tokens = ["phone"]
    phone_owner.save()
    data = {"lesson": 3, "url": "https://example.com/l/3", "flags": {"new": True}}
    message = enqueue_message(channel="push", contact=phone_owner, subject="New lesson", text="Lesson 3 is out", metadata={"data": data})
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.SENT
    assert message.provider_message_id == f"projects/{PROJECT}/messages/phone-ok"
    [request] = fcm.requests
    assert request.path == f"/v1/projects/{PROJECT}/messages:send"
    assert request.json() == {
        "message": {
            "token": "phone",
            "notification": {"title": "New lesson", "body": "Lesson 3 is out"},
            "data": {"lesson": "3", "url": "https://example.com/l/3", "flags": '{"new": true}'},  # v1 takes strings only
        }
    }
    assert request.headers["Authorization"] == "Bearer ya29.local-1"  # minted by the token endpoint, assertion verified
    assert token_endpoint.endpoint.issued == ["ya29.local-1"]


def test_every_device_gets_it_on_one_connection_and_one_token_serves_many_batches(provider, fcm, token_endpoint, phone_owner):
    first = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="One")
    send_due_messages()
    second = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Two")
    send_due_messages()
    assert [r.json()["message"]["token"] for r in fcm.requests] == ["phone", "tablet", "laptop"] * 2
    assert len({r.headers["Authorization"] for r in fcm.requests}) == 1
    assert len(fcm.connections) == 2  # one keep-alive connection per batch, not one per device
    assert token_endpoint.endpoint.issued == ["ya29.local-1"]  # cached until it expires
    assert refreshed(first).status == refreshed(second).status == Status.SENT
    assert OutboxMessage.objects.count() == 2  # one message per contact, not per device
    assert DeliveryAttempt.objects.get(message=first).response == "3 of 3 devices"


def test_an_unregistered_token_is_pruned_and_the_others_still_get_it(provider, fcm, phone_owner):
    fcm.fcm.answers["tablet"] = fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
    message = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Hello")
    send_due_messages()
    assert refreshed(message).status == Status.SENT
    phone_owner.refresh_from_db()
    assert phone_owner.push_tokens == ["phone", "laptop"]
    assert AuditEntry.objects.filter(verb="updated", target_type="messaging.contact").exists()
    assert not Suppression.objects.exists()
    assert len(fcm.requests) == 3


def test_all_tokens_dead_fails_as_a_hard_bounce_and_leaves_the_contact_without_tokens(provider, fcm, phone_owner):
    fcm.fcm.answers |= {
        "phone": fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
        "tablet": fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT"),
        "laptop": fcm_error(404, "NOT_FOUND", "Requested entity was not found."),
    }
    message = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Hello")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.FAILED and "no live device token" in message.error
    phone_owner.refresh_from_db()
    assert phone_owner.push_tokens == []
    assert DeliveryEvent.objects.get(message=message).kind == DeliveryEvent.Kind.BOUNCED
    # the next message finds no device at all: a clear failure, no request
    again = enqueue_message(channel="push", contact=phone_owner, to="phone", subject="Hi", text="Again")
    Suppression.objects.all().delete()
    send_due_messages()
    assert "no live device token" in refreshed(again).error and len(fcm.requests) == 3


def test_a_payload_fcm_refuses_fails_the_message_but_keeps_the_token(provider, fcm, phone_owner):
    phone_owner.push_tokens = ["phone"]
    phone_owner.save()
    fcm.fcm.answers["phone"] = fcm_error(400, "INVALID_ARGUMENT", "Message is too big", "INVALID_ARGUMENT")
    message = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Hello")
    send_due_messages()
    assert refreshed(message).status == Status.FAILED and "too big" in refreshed(message).error
    phone_owner.refresh_from_db()
    assert phone_owner.push_tokens == ["phone"] and not Suppression.objects.exists()


def test_503_is_retried_later_and_then_sent(provider, fcm, phone_owner):
    phone_owner.push_tokens = ["phone"]
    phone_owner.save()
    fcm.fcm.answers["phone"] = fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.")
    message = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Hello")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.QUEUED and "503" in message.error and message.attempts == 1
    assert phone_owner.push_tokens == ["phone"]
    del fcm.fcm.answers["phone"]
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        send_due_messages()
    assert refreshed(message).status == Status.SENT and len(fcm.requests) == 2


def test_a_raw_token_without_a_contact_goes_to_that_token_only(provider, fcm):
    message = enqueue_message(channel="push", to="lone-device", subject="Hi", text="Hello")
    send_due_messages()
    assert refreshed(message).status == Status.SENT
    assert [r.json()["message"]["token"] for r in fcm.requests] == ["lone-device"]


def test_token_endpoint_down_is_a_clear_error_and_the_message_waits(settings, key, fcm, phone_owner):
    settings.MAILROOM_SECRETS = {"FCM": service_account(key, f"http://127.0.0.1:{free_port()}/token")}
    provider = Provider.objects.create(name="FCM", channel="push", kind="http", config={"url": fcm.url, "service_account_secret": "FCM"})
    message = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Hello")
    send_due_messages()
    message, provider = refreshed(message), Provider.objects.get(pk=provider.pk)
    assert message.status == Status.QUEUED  # not lost: retried with backoff
    assert "could not reach the token endpoint" in message.error and "could not reach the token endpoint" in provider.last_error
    assert fcm.requests == []  # no device was sent anything unauthorised
    phone_owner.refresh_from_db()
    assert phone_owner.push_tokens == ["phone", "tablet", "laptop"]


def test_a_refused_service_account_and_an_fcm_401_are_misconfiguration(settings, key, token_endpoint, fcm, phone_owner):
    def refuse(request):
        return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}

    token_endpoint.answer = refuse
    settings.MAILROOM_SECRETS = {"FCM": service_account(key, token_endpoint.endpoint.url)}
    Provider.objects.create(name="FCM", channel="push", kind="http", config={"url": fcm.url, "service_account_secret": "FCM"})
    refused = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Hello")
    send_due_messages()
    refused = refreshed(refused)
    assert refused.status == Status.FAILED and "refused the service account" in refused.error and "invalid_grant" in refused.error

    token_endpoint.answer = token_endpoint.endpoint
    for token in ("phone", "tablet", "laptop"):
        fcm.fcm.answers[token] = fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
    forget_cached_tokens()
    unauthorised = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Again")
    send_due_messages()
    unauthorised = refreshed(unauthorised)
    assert unauthorised.status == Status.FAILED and "FCM refused our credentials" in unauthorised.error
    phone_owner.refresh_from_db()
    assert phone_owner.push_tokens == ["phone", "tablet", "laptop"]  # nothing pruned for our own mistake


@pytest.mark.parametrize(
    ("secrets", "config", "expected"),
    [
        ({}, {}, "service_account_secret"),
        ({}, {"service_account_secret": "FCM"}, "MAILROOM_SECRET_FCM"),
        ({"FCM": "{not json"}, {"service_account_secret": "FCM"}, "is not JSON"),
        ({"FCM": json.dumps({"type": "service_account"})}, {"service_account_secret": "FCM"}, "not a usable service account"),
    ],
)
def test_a_bad_service_account_fails_with_a_clear_error_and_sends_nothing(settings, fcm, phone_owner, secrets, config, expected):
    settings.MAILROOM_SECRETS = secrets
    Provider.objects.create(name="FCM", channel="push", kind="http", config={"url": fcm.url, **config})
    message = enqueue_message(channel="push", contact=phone_owner, subject="Hi", text="Hello")
    send_due_messages()
    message = refreshed(message)
    assert message.status == Status.FAILED and expected in message.error
    assert fcm.requests == []
