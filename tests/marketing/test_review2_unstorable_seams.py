"""Issue 16, item 6 across the seams (review): text PostgreSQL or JSON cannot round-trip
(NUL, an unpaired surrogate) entering through console forms the API parser never sees. Each
is refused with the field named, and nothing is written."""

import pytest

from marketing.automations.actions import create_automation
from marketing.campaigns.actions import create_campaign
from marketing.models import Automation, Campaign, Segment
from messaging.errors import InvalidInput
from messaging.models import AuditEntry
from tests.marketing.conftest import wizard_form

pytestmark = pytest.mark.django_db


def test_marketer_cannot_store_an_unpaired_surrogate_in_campaign_merge_data_from_the_wizard(client, marketer, newsletter, segment, version):
    client.force_login(marketer)
    response = client.post("/admin/marketing/campaign/new/", wizard_form(newsletter, segment, version, context='{"promo": "\\ud800"}'))
    assert response.status_code == 200
    assert "cannot be stored" in response.content.decode()
    assert not Campaign.objects.exists()


def test_merge_data_with_a_nul_is_refused_by_the_action_too(marketer, newsletter, segment, version):
    with pytest.raises(InvalidInput) as error:
        create_campaign(actor=marketer, name="x", topic=newsletter, context={"promo": "a\x00b"})
    assert "context" in error.value.fields
    assert not Campaign.objects.exists()


def test_marketer_cannot_store_an_unpaired_surrogate_in_an_automation_trigger_from_the_settings_form(client, marketer):
    automation = create_automation(actor=marketer, name="Welcome", trigger_type="event", trigger={"event": "signed_up"})
    client.force_login(marketer)
    form = {"name": "Welcome", "description": "", "trigger_type": "event", "trigger": '{"event": "x\\ud800"}', "exit_events": "[]"}
    form |= {"reentry": automation.reentry, "frequency_window_hours": automation.frequency_window_hours or 24}
    form |= {"conversion_window_days": automation.conversion_window_days}
    client.post(f"/admin/marketing/automation/{automation.pk}/change/", form)
    automation.refresh_from_db()
    assert automation.trigger == {"event": "signed_up"}
    assert not AuditEntry.objects.filter(target_id=str(automation.pk), verb="changed").exists()


def test_marketer_cannot_store_a_nul_in_a_segment_rule_from_the_builder(client, marketer):
    client.force_login(marketer)
    form = {"name": "Nul", "description": "", "kind": "dynamic", "node": ["r:group", "r.0:rule"], "r-op": "and"}
    form |= {"r.0-field": "email", "r.0-operator": "contains", "r.0-value": "a\x00b"}
    response = client.post("/admin/marketing/segment/builder/", form)
    assert response.status_code == 200
    assert "cannot be stored" in response.content.decode()
    assert not Segment.objects.filter(name="Nul").exists()
    assert Automation.objects.count() == 0
