"""WhatsApp approved templates (ContentSid + per-contact ContentVariables) and Twilio's
StatusCallback, against a real local Twilio-style HTTP server; the callback it is told about
is then signed the way Twilio signs it and posted to our webhook."""

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from messaging.contacts import create_contact
from messaging.content.versions import activate_template_version, create_template, save_template_version, update_template
from messaging.delivery.outbox import enqueue_bulk, enqueue_message
from messaging.delivery.sending import send_due_messages
from messaging.errors import InvalidInput
from messaging.metadata import INTERNAL_METADATA_KEYS, WHATSAPP_TEMPLATE_KEY
from messaging.models import OutboxMessage, Provider, Template
from messaging.views.webhooks import twilio_signature
from tests.support.events import webhook_events
from tests.support.local_http import LocalServer

pytestmark = pytest.mark.django_db
Status = OutboxMessage.Status
BASE = "https://mailroom.example.com"
SID = "HX0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.MAILROOM_KICK_CLUSTER = False
    settings.MAILROOM_BASE_URL = BASE
    settings.MAILROOM_SECRETS = {"TWILIO": "auth-token"}


@pytest.fixture
def twilio():
    def accept(request):
        return 201, {"sid": f"SM{len(server.requests)}"}

    with LocalServer(accept) as server:
        yield server


def form_of(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


@pytest.fixture
def provider(twilio):
    config = {
        "url": twilio.url,
        "account_sid": "AC1",
        "from": "+33700000000",
        "token_secret": "TWILIO",
        "webhook_secret": "TWILIO",
        "signature": "twilio",
        "requires_template": True,
    }
    return Provider.objects.create(name="Twilio WhatsApp", channel="whatsapp", kind="http", config=config)


@pytest.fixture
def reminder(db):
    template = create_template(actor=None, key="appointment-reminder", name="Appointment reminder", channel="whatsapp")
    version = save_template_version(actor=None, template=template, sms_body="Hi {{ contact.first_name }}, see you at {{ time }}.")
    activate_template_version(actor=None, version=version)
    return update_template(
        actor=None, template=template, whatsapp_template_sid=SID, whatsapp_variables=["{{ contact.first_name }}", "{{ time }}"]
    )


@pytest.fixture
def people(db):
    return [
        create_contact(actor=None, phone="+33612345678", first_name="Ada"),
        create_contact(actor=None, phone="+33612345679", first_name="Grace"),
    ]


def test_an_approved_template_goes_as_content_sid_with_variables_filled_per_contact(provider, twilio, reminder, people):
    result = enqueue_bulk(channel="whatsapp", recipients=people, key="rdv", template=reminder, context={"time": "10:30"})
    assert result.queued == 2
    send_due_messages()
    forms = sorted((form_of(r) for r in twilio.requests), key=lambda f: f["To"])
    assert [f["To"] for f in forms] == ["whatsapp:+33612345678", "whatsapp:+33612345679"]
    for form, name in zip(forms, ["Ada", "Grace"], strict=True):
        assert form["ContentSid"] == SID and "Body" not in form
        assert json.loads(form["ContentVariables"]) == {"1": name, "2": "10:30"}
    stored = OutboxMessage.objects.get(to_address="+33612345678")
    assert stored.status == Status.SENT and stored.body_text == "Hi Ada, see you at 10:30."  # what the console shows
    assert stored.metadata[WHATSAPP_TEMPLATE_KEY] == {"sid": SID, "variables": {"1": "Ada", "2": "10:30"}}
    assert WHATSAPP_TEMPLATE_KEY in INTERNAL_METADATA_KEYS  # the API refuses it from callers


def test_without_an_approved_template_the_provider_that_requires_one_refuses_at_enqueue(provider, twilio, people):
    with pytest.raises(InvalidInput, match="must use a template WhatsApp approved"):
        enqueue_message(channel="whatsapp", contact=people[0], text="Free text")
    plain = create_template(actor=None, key="plain", name="Plain WhatsApp", channel="whatsapp")
    activate_template_version(actor=None, version=save_template_version(actor=None, template=plain, sms_body="Hello"))
    with pytest.raises(InvalidInput, match="“Plain WhatsApp” names no approved WhatsApp template"):
        enqueue_message(channel="whatsapp", contact=people[0], template=plain)
    assert not OutboxMessage.objects.exists()


def test_a_message_that_got_past_enqueue_without_a_template_is_refused_at_send(provider, twilio, people):
    Provider.objects.filter(pk=provider.pk).update(config=provider.config | {"requires_template": False})
    message = enqueue_message(channel="whatsapp", contact=people[0], text="Free text")  # e.g. queued before the switch
    Provider.objects.filter(pk=provider.pk).update(config=provider.config)
    send_due_messages()
    message.refresh_from_db()
    assert message.status == Status.FAILED and "requires an approved template" in message.error
    assert twilio.requests == []


def test_without_requires_template_free_text_still_goes_as_body(provider, twilio, people):
    Provider.objects.filter(pk=provider.pk).update(config=provider.config | {"requires_template": False})
    enqueue_message(channel="whatsapp", contact=people[0], text="Free text")
    send_due_messages()
    assert form_of(twilio.requests[0])["Body"] == "Free text" and "ContentSid" not in form_of(twilio.requests[0])


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (["{{ contact.first_name|shout }}"], "Line 1 of the WhatsApp variable 1: Invalid filter"),
        (["ok", "{% load static %}"], "WhatsApp variable 2"),
        ("{{ contact.first_name }}", "list of at most"),
        ([""], "list of at most"),
    ],
)
def test_bad_variables_are_refused_with_the_variable_named_and_nothing_saved(reminder, variables, expected):
    with pytest.raises(InvalidInput, match=expected):
        update_template(actor=None, template=reminder, whatsapp_variables=variables)
    reminder.refresh_from_db()
    assert reminder.whatsapp_variables == ["{{ contact.first_name }}", "{{ time }}"]
    reminder.whatsapp_variables = variables
    with pytest.raises(ValidationError):  # the console form runs the same check (Template.clean)
        reminder.full_clean()


def test_only_a_whatsapp_template_names_an_approved_template(db):
    email = create_template(actor=None, key="welcome", name="Welcome", channel="email")
    with pytest.raises(InvalidInput, match="Only a WhatsApp template"):
        update_template(actor=None, template=email, whatsapp_template_sid=SID)
    email.refresh_from_db()
    assert email.whatsapp_template_sid == ""


def test_a_variable_empty_or_unknown_for_a_contact_is_refused_at_enqueue_naming_the_template(provider, reminder, people):
    nameless = create_contact(actor=None, phone="+33612345670")
    with pytest.raises(InvalidInput, match="Variable 1 of the approved WhatsApp template of “Appointment reminder”: it is empty"):
        enqueue_message(channel="whatsapp", contact=nameless, template=reminder, context={"time": "10:30"})
    with pytest.raises(InvalidInput, match=r"Variable 2 .*unknown name"):
        enqueue_message(channel="whatsapp", contact=people[0], template=reminder)  # no {{ time }} given
    assert not OutboxMessage.objects.exists()


def test_the_campaign_fan_out_fills_the_variables_in_the_worker(provider, twilio, reminder, people):
    """Set-based fan-out rows carry only metadata["render"]; render_deferred fills them."""
    OutboxMessage.objects.create(
        channel="whatsapp",
        contact=people[1],
        to_address=people[1].phone,
        next_attempt_at=timezone.now(),
        metadata={"render": {"version": reminder.active_version_id, "context": {"time": "9:00"}}},
    )
    send_due_messages()
    form = form_of(twilio.requests[0])
    assert form["ContentSid"] == SID and json.loads(form["ContentVariables"]) == {"1": "Grace", "2": "9:00"}


def test_status_callback_points_at_our_webhook_and_a_signed_callback_is_recorded(client, provider, twilio, reminder, people):
    message = enqueue_message(channel="whatsapp", contact=people[0], template=reminder, context={"time": "10:30"})
    send_due_messages()
    message.refresh_from_db()
    callback = form_of(twilio.requests[0])["StatusCallback"]
    assert callback == f"{BASE}/webhooks/providers/{provider.pk}/events"
    # what Twilio then does: POST the status to that URL, signed with the auth token over it
    params = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered", "AccountSid": "AC1"}
    signature = twilio_signature("auth-token", callback, list(params.items()))
    response = client.post(
        urlsplit(callback).path,
        urlencode(params),
        headers={"X-Twilio-Signature": signature},
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    assert webhook_events().get().message == message and webhook_events().get().kind == "delivered"


def test_no_status_callback_without_a_webhook_secret(twilio, people):
    Provider.objects.create(
        name="SMS",
        channel="sms",
        kind="http",
        config={"url": twilio.url, "account_sid": "AC1", "from": "+33700000000", "token_secret": "TWILIO"},
    )
    enqueue_message(channel="sms", contact=people[0], text="Hi")
    send_due_messages()
    assert "StatusCallback" not in form_of(twilio.requests[0])  # our webhook would refuse every callback
    assert Template.objects.count() == 0


def test_the_console_shows_the_approved_template_fields_on_whatsapp_templates_and_refuses_bad_ones(client, marketer, reminder):
    client.force_login(marketer)
    url = f"/admin/messaging/template/{reminder.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="whatsapp_template_sid"' in page and "Content SID (HX…)" in page and 'name="whatsapp_variables"' in page
    form = {
        "name": reminder.name,
        "category": reminder.category,
        "channel": "whatsapp",
        "topic": "",
        "whatsapp_template_sid": SID,
        "whatsapp_variables": '["{{ settings.SECRET_KEY }}"]',
    }
    response = client.post(url, form)
    assert response.status_code == 200 and "WhatsApp variable 1" in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.whatsapp_variables == ["{{ contact.first_name }}", "{{ time }}"]
    response = client.post(url, form | {"whatsapp_variables": '["{{ contact.first_name }}"]'})
    assert response.status_code == 302
    reminder.refresh_from_db()
    assert reminder.whatsapp_variables == ["{{ contact.first_name }}"]
    email = create_template(actor=None, key="welcome", name="Welcome", channel="email")
    assert 'name="whatsapp_template_sid"' not in client.get(f"/admin/messaging/template/{email.pk}/change/").content.decode()
