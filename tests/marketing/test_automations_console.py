"""The automations console: preset gallery, flow page with the HTMX steps editor,
activate / pause, report and run history; roles limit who may change what."""

import pytest
from django.urls import reverse

from marketing.events import track_event
from marketing.models import Automation
from messaging.contacts import create_contact

pytestmark = pytest.mark.django_db


def test_preset_gallery_creates_a_draft_and_opens_its_flow(catalog, client, marketer):
    client.force_login(marketer)
    gallery = client.get(reverse("admin:marketing_automation_presets"))
    assert gallery.status_code == 200 and b'data-testid="preset-cart-abandoned"' in gallery.content
    response = client.post(reverse("admin:marketing_automation_presets"), {"preset": "cart-abandoned"})
    automation = Automation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("admin:marketing_automation_flow", args=[automation.pk])
    flow = client.get(response["Location"])
    assert flow.status_code == 200
    assert flow.content.decode().count('data-testid="step-row"') == 4


def test_steps_editor_adds_moves_and_removes_steps_with_htmx(catalog, client, marketer):
    client.force_login(marketer)
    client.post(reverse("admin:marketing_automation_presets"), {"preset": "welcome"})
    automation = Automation.objects.get()
    url = reverse("admin:marketing_automation_steps", args=[automation.pk])
    added = client.post(url, {"op": "add", "kind": "wait", "amount": "2", "unit": "days"}, headers={"HX-Request": "true"})
    assert added.status_code == 200 and b"Wait 2 days" in added.content
    wait = automation.steps.get(kind="wait")
    client.post(url, {"op": "up", "step": wait.pk})
    assert list(automation.steps.order_by("position").values_list("kind", flat=True)) == ["wait", "send"]
    bad = client.post(url, {"op": "add", "kind": "send", "template": "missing"})
    assert b'data-testid="step-error"' in bad.content and automation.steps.count() == 2
    client.post(url, {"op": "remove", "step": wait.pk})
    assert list(automation.steps.values_list("kind", flat=True)) == ["send"]


def test_activate_pause_and_report_on_the_flow_page(catalog, client, marketer, committed):
    client.force_login(marketer)
    with committed():
        client.post(reverse("admin:marketing_automation_presets"), {"preset": "welcome"})
    automation = Automation.objects.get()
    state_url = reverse("admin:marketing_automation_state", args=[automation.pk])
    with committed():
        client.post(state_url, {"to": "active"})
    automation.refresh_from_db()
    assert automation.state == "active"
    with committed():
        track_event(contact=create_contact(actor=None, email="ada@example.com"), name="user_registered")
    page = client.get(reverse("admin:marketing_automation_flow", args=[automation.pk])).content.decode()
    assert 'data-testid="report-entered">1<' in page and 'data-testid="run-row"' in page
    with committed():
        client.post(state_url, {"to": "paused"})
    automation.refresh_from_db()
    assert automation.state == "paused"
    run = automation.runs.get()
    assert client.get(reverse("admin:marketing_automationrun_change", args=[run.pk])).status_code == 200
    assert client.get(reverse("admin:marketing_automationrun_changelist") + "?q=ada@example.com").status_code == 200


def test_who_may_change_automations(catalog, client, approver, support):
    automation = Automation.objects.create(name="X", trigger={"events": ["a"]})
    client.force_login(approver)
    assert client.get(reverse("admin:marketing_automation_flow", args=[automation.pk])).status_code == 200
    assert client.post(reverse("admin:marketing_automation_state", args=[automation.pk]), {"to": "active"}).status_code == 403
    assert client.post(reverse("admin:marketing_automation_presets"), {"preset": "welcome"}).status_code == 403
    client.force_login(support)
    assert client.get(reverse("admin:marketing_automation_flow", args=[automation.pk])).status_code == 403
