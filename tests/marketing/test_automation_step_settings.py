"""Step settings: one serializer per step kind checks them, whichever way a step comes in
(the actions, the API). A bad setting is refused with one sentence that names it, and
nothing is written; good settings keep the keys they were given."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from marketing.automations.actions import add_step, create_automation
from marketing.automations.steps.validation import CONFIG_SERIALIZERS, clean_step_config
from marketing.models import Automation, AutomationStep
from messaging.errors import InvalidInput
from messaging.models import AuditEntry

pytestmark = pytest.mark.django_db
URL = "/api/v1/automations/"

BAD = [
    ("send", {"template": "nope"}, "A send step needs the key of an existing template (got “nope”)."),
    ("send", {"template": "welcome", "channel": "fax"}, "Unknown channel “fax”."),
    ("send", {"template": "welcome", "once_per": 7}, "“once_per” names a property of the event, e.g. appointment_id."),
    ("wait", {}, "A wait needs a duration (minutes, hours or days) or an “until”."),
    ("wait", {"minutes": -5}, "The wait's minutes must be a positive number."),
    ("wait", {"until": {"time": "25:00"}}, "“25:00” is not a time like 09:00."),
    ("wait", {"until": {"time": "09:00", "weekday": 7}}, "The weekday is 0 (Monday) to 6 (Sunday)."),
    ("condition", {"check": "mood"}, "A condition checks consent, attribute, property, tag or event_since_start."),
    ("condition", {"check": "attribute", "name": "plan", "op": "like"}, "Unknown operator “like”."),
    ("condition", {"check": "tag", "tag": "vip", "else": {"goto": 1}}, "“else” is exit or {“goto”: a later step number}."),
    ("update", {"set": {}}, "An update sets or unsets attributes, or adds or removes a tag."),
    ("update", {"add_tag": "x", "unset": "cart"}, "“unset” is a list of attribute names."),
    ("exit", {"reason": {"why": 1}}, "“reason” must be text."),
]


def test_every_step_kind_has_a_serializer():
    assert set(CONFIG_SERIALIZERS) == set(AutomationStep.Kind.values)


@pytest.mark.parametrize(("kind", "config", "message"), BAD, ids=[f"{kind}-{i}" for i, (kind, _c, _m) in enumerate(BAD)])
def test_a_bad_step_is_refused_by_the_action_and_nothing_is_written(catalog, kind, config, message):
    # given a draft automation with one good step
    flow = create_automation(
        actor=None, name="Flow", trigger_type="event", trigger={"events": ["a"]}, steps=[{"kind": "wait", "config": {"hours": 1}}]
    )
    audits = AuditEntry.objects.count()
    # when a step with bad settings is added
    with pytest.raises(InvalidInput) as refused:
        add_step(actor=None, automation=flow, kind=kind, config=config)
    # then the error is the one sentence, on the settings, and the automation is as it was
    assert str(refused.value) == message and refused.value.fields == {"config": [message]}
    assert list(flow.steps.values_list("kind", flat=True)) == ["wait"]
    assert AuditEntry.objects.count() == audits


@pytest.mark.parametrize(("kind", "config", "message"), BAD, ids=[f"{kind}-{i}" for i, (kind, _c, _m) in enumerate(BAD)])
def test_a_bad_step_is_refused_by_the_api_and_nothing_is_written(catalog, marketer, kind, config, message):
    api = APIClient()
    api.force_authenticate(marketer)
    body = {"name": "X", "trigger_type": "event", "trigger": {"events": ["a"]}, "steps": [{"kind": kind, "config": config}]}
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == message and response.json()["fields"] == {"config": [message]}
    assert not Automation.objects.exists() and not AutomationStep.objects.exists()


def test_settings_that_are_not_an_object_are_refused_not_a_crash():
    with pytest.raises(InvalidInput, match="settings are an object"):
        clean_step_config(kind="wait", config="24 hours")


def test_good_settings_keep_their_keys_and_only_the_send_basics_are_rewritten(catalog):
    cleaned = clean_step_config(kind="send", config={"template": " welcome ", "note": "for the team"})
    assert cleaned == {"template": "welcome", "channel": "email", "note": "for the team"}
    # a wait keeps the amount as given; an operator only matters to attribute and property checks
    assert clean_step_config(kind="wait", config={"hours": "2"}) == {"hours": "2"}
    assert clean_step_config(kind="condition", config={"check": "tag", "tag": "vip", "op": "??"}, position=0)["op"] == "??"


def test_the_schema_lists_the_settings_of_each_step_kind():
    schema = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    steps = schema["StepInputRequest"]
    assert steps["discriminator"]["propertyName"] == "kind"
    assert set(steps["discriminator"]["mapping"]) == set(AutomationStep.Kind.values)
    assert schema["SendConfigRequest"]["required"] == ["template"]
    assert {"seconds", "minutes", "hours", "days", "until", "if_past"} <= set(schema["WaitConfigRequest"]["properties"])
