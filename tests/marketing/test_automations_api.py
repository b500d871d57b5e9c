"""The automations API (seed 003): create from a preset or from scratch, activate, pause,
analytics and executions; roles decide who may do what."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from marketing.events import track_event
from marketing.models import Automation
from messaging.consent import subscribe
from messaging.contacts import create_contact
from messaging.models import AuditEntry

pytestmark = pytest.mark.django_db
URL = "/api/v1/automations/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_marketer_creates_a_preset_activates_it_and_reads_its_runs_and_report(catalog, clock, tick, marketer, committed):
    api = client_for(marketer)
    # given the cart-abandoned preset created and activated through the API
    with committed():
        created = api.post(URL, {"preset": "cart-abandoned"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["state"] == "draft" and [s["kind"] for s in created.json()["steps"]] == ["wait", "send", "wait", "send"]
    with committed():
        assert api.post(f"{URL}{pk}/activate/").json()["state"] == "active"
    # when a contact abandons a cart through the events API and an hour passes
    ada = create_contact(actor=None, email="ada@example.com")
    subscribe(actor=None, contact=ada, topic=catalog["promotions"])
    with committed():
        posted = api.post("/api/v1/events/", {"email": "ada@example.com", "name": "cart_abandoned", "idempotency_key": "c1"}, format="json")
        api.post("/api/v1/events/", {"email": "ada@example.com", "name": "cart_abandoned", "idempotency_key": "c1"}, format="json")
    assert posted.status_code == 201
    tick()
    clock.shift(timedelta(hours=1))
    tick()
    with committed():
        track_event(contact=ada, name="order_paid")
    # then the executions show one run with its history, and the report counts it
    runs = api.get(f"{URL}{pk}/executions/").json()["results"]
    assert len(runs) == 1
    assert [log["outcome"] for log in runs[0]["logs"]] == ["waiting", "sent", "waiting"] and runs[0]["status"] == "exited"
    report = api.get(f"{URL}{pk}/analytics/").json()
    assert (report["entered"], report["exited"], report["messages_sent"], report["conversions"]) == (1, 1, 1, 1)
    # and pausing works once, then says why it cannot
    with committed():
        assert api.post(f"{URL}{pk}/pause/").json()["state"] == "paused"
        again = api.post(f"{URL}{pk}/pause/")
    assert again.status_code == 409 and again.json()["code"] == "automation_state"
    assert AuditEntry.objects.filter(verb__in=["created", "activated", "paused"], target_type="marketing.automation").count() == 3


def test_create_from_scratch_validates_steps_and_trigger(catalog, marketer):
    api = client_for(marketer)
    bad = api.post(
        URL,
        {"name": "X", "trigger_type": "event", "trigger": {"events": ["a"]}, "steps": [{"kind": "send", "config": {"template": "nope"}}]},
        format="json",
    )
    assert bad.status_code == 400 and "template" in bad.json()["detail"]
    once_per = {"kind": "send", "config": {"template": "welcome", "once_per": 7}}
    bad_once = api.post(URL, {"name": "X", "trigger_type": "event", "trigger": {"events": ["a"]}, "steps": [once_per]}, format="json")
    assert bad_once.status_code == 400 and "once_per" in bad_once.json()["detail"]
    no_event = api.post(URL, {"name": "X", "trigger_type": "event", "trigger": {}}, format="json")
    assert no_event.status_code == 400
    good = api.post(
        URL,
        {
            "name": "Hello",
            "trigger_type": "event",
            "trigger": {"events": ["signed_up"]},
            "steps": [{"kind": "send", "config": {"template": "welcome"}}],
        },
        format="json",
    )
    assert good.status_code == 201
    pk = good.json()["id"]
    replaced = client_for(marketer).patch(f"{URL}{pk}/", {"steps": [{"kind": "wait", "config": {"hours": 1}}]}, format="json")
    assert [s["kind"] for s in replaced.json()["steps"]] == ["wait"]
    assert not Automation.objects.filter(name="X").exists()


def test_activating_without_steps_is_refused(catalog, marketer):
    api = client_for(marketer)
    pk = api.post(URL, {"name": "Empty", "trigger_type": "event", "trigger": {"events": ["x"]}}, format="json").json()["id"]
    response = api.post(f"{URL}{pk}/activate/")
    assert response.status_code == 400 and Automation.objects.get(pk=pk).state == "draft"


def test_presets_list_and_role_limits(catalog, marketer, approver, support):
    assert {p["key"] for p in client_for(marketer).get(f"{URL}presets/").json()} >= {"cart-abandoned", "order-paid", "weekly-progress"}
    assert client_for(approver).post(URL, {"preset": "welcome"}, format="json").status_code == 403
    pk = client_for(marketer).post(URL, {"preset": "welcome"}, format="json").json()["id"]
    assert client_for(approver).post(f"{URL}{pk}/activate/").status_code == 403
    assert client_for(support).get(URL).status_code == 403
