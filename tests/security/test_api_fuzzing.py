"""Schemathesis over the whole REST API: every operation of our own OpenAPI schema, fed
generated valid and invalid requests (paths, query strings, bodies), signed in with an
Admin API key so the requests reach the views rather than stopping at 401/403.

Properties: never a 5xx; every refusal is RFC 9457 problem+json; and afterwards the
database still holds together (no message without an address, no ledger out of step).
The schema is built in-process with drf-spectacular and the requests go through the
WSGI application (no server): a few examples per operation keeps it to about a minute."""

import os

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core import signals
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.generation.modes import GenerationMode

from messaging.api_keys import create_api_key
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.models import Contact, OutboxMessage, Topic

pytestmark = pytest.mark.django_db
APP = WSGIHandler()
PHASES = [Phase.explicit, Phase.generate]  # no shrinking: the report names the request already
# per operation and mode: about half a minute for the whole API; raise it for a deeper run
EXAMPLES = int(os.environ.get("MAILROOM_FUZZ_EXAMPLES", "5"))


@pytest.fixture
def api_schema(db, admin_user, settings):
    topic = Topic.objects.create(key="newsletter", name="Newsletter", kind=Topic.Kind.MARKETING)
    contact = create_contact(actor=None, email="ada@example.com", first_name="Ada")
    subscribe(actor=None, contact=contact, topic=topic)
    settings.MAILROOM_KICK_CLUSTER = False
    token = create_api_key(actor=admin_user, name="Fuzzer", role=Group.objects.get(name="Admin")).token
    document = SchemaGenerator(patterns=None).get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(document)
    # Like Django's test client: the test's transaction must survive each request (the
    # handler would otherwise close the connection when a response finishes).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    schema.app = APP
    schema.config.headers = {"Authorization": f"Api-Key {token}"}
    yield schema
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def problem_details(ctx, response, case) -> None:
    """A refusal is RFC 9457 problem+json (405/406/415 come from DRF's negotiation)."""
    if 400 <= response.status_code < 500 and response.status_code not in (405, 406, 415):
        headers = {name.lower(): value for name, value in response.headers.items()}
        content_type = headers.get("content-type", [""])
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/problem+json"), f"{response.status_code} answered {content_type}"


def test_the_api_never_answers_5xx_to_generated_requests(api_schema):
    # One hypothesis run per operation and mode (schemathesis' pytest plugin does the same,
    # but its lazy loader does not work with pytest 9 yet).
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None, phases=PHASES)
            def run(case):
                cache.clear()  # throttles count per key: generated requests must reach the views
                response = case.call(app=APP, headers={"Host": "localhost"})
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, problem_details])
                # nothing half-made: every queued message has an address, every live contact an identity
                assert not OutboxMessage.objects.filter(to_address="").exists()
                assert not Contact.objects.filter(
                    email__isnull=True, phone__isnull=True, external_id__isnull=True, erased_at__isnull=True
                ).exists()

            try:
                run()
            except Unsatisfiable:
                # An operation without parameters or body has nothing to make invalid
                # (GET /automations/presets/): only a negative run may come up empty.
                if mode is not GenerationMode.NEGATIVE:
                    failures.append(f"{operation.method.upper()} {operation.path} ({mode}): no request could be generated")
            except (Exception, BaseExceptionGroup) as error:  # collect every operation's failure, then report them all
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {error}")
    assert operations > 20, f"only {operations} operations in the schema"
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("body", ["1053", "[1]", '"text"', "null", "[]", "true"])
def test_a_json_body_that_is_not_an_object_is_a_400_everywhere(admin_user, body):
    """Found by schemathesis: POST /api/v1/events/ with the body `1053` was a 500."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    for endpoint in ("events", "orders", "contacts", "messages", "suppressions", "templates", "segments", "unsubscribe"):
        response = client.post(f"/api/v1/{endpoint}/", body, content_type="application/json")
        assert response.status_code in (400, 404, 405), (endpoint, response.status_code)


@pytest.mark.parametrize(
    ("value", "status"),
    [("0409-08-21T06:46:36+20:26", 200), ("2026-01-01T00:00:00-23:59", 200), ("0001-01-01T00:00:00+05:00", 400), ("garbage", 400)],
)
def test_date_filters_take_any_offset_python_accepts(admin_user, value, status):
    """Found by schemathesis on PostgreSQL: ?created_after=…+20:26 was a 500 (PostgreSQL
    refuses offsets past ±15:59); the filters compare in UTC now."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    for endpoint, name in (("contacts", "created_after"), ("contacts", "updated_after"), ("messages", "created_before")):
        assert client.get(f"/api/v1/{endpoint}/", {name: value}).status_code == status, (endpoint, name, value)
