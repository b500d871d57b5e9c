"""Internal message metadata forged through the API: `render` (render another template with
another contact's data at send), `links` (open the click redirector to any target),
`campaign_id` (forged analytics; "a/b" made the analytics page 500). The API refuses every
key the product writes itself, and the analytics pages stay up with bad stored values."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from marketing.analytics.rollups import roll_up_recent
from marketing.models import DailyStat
from messaging.api_keys import create_api_key
from messaging.metadata import INTERNAL_METADATA_KEYS
from messaging.models import OutboxMessage
from tests.analytics.conftest import days_ago, world  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
URL = "/api/v1/messages/"


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ops_key_client(admin_user) -> APIClient:
    created = create_api_key(actor=admin_user, name="Ops integration", role=Group.objects.get(name="Ops"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {created.token}")
    return client


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"render": {"version": 1, "subject": "", "context": {}}}, "render"),
        ({"campaign_id": "a/b"}, "campaign_id"),
        ({"links": [1, 2, 3]}, "links"),
        ({"order": "A-1", "automation_id": 7}, "automation_id"),
        ({"template_version": 1}, "template_version"),
        ({"missing_variables": []}, "missing_variables"),
        ({"purpose": "password_reset"}, "purpose"),
    ],
)
def test_ops_key_cannot_write_internal_metadata_through_the_api(admin_user, contact, metadata, key):
    response = ops_key_client(admin_user).post(URL, {"contact": contact.pk, "text": "Hello", "metadata": metadata}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert key in " ".join(body["fields"]["metadata"]), body
    assert not OutboxMessage.objects.exists()


def test_every_key_the_product_writes_is_internal():
    written = ("render", "links", "campaign_id", "automation_id", "template_version", "missing_variables", "purpose")
    written += ("campaign", "variant", "automation", "automation_run", "step", "notification", "test_send", "erased")
    assert set(written) <= INTERNAL_METADATA_KEYS


def test_the_api_still_accepts_the_callers_own_metadata(ops, contact):
    response = as_user(ops).post(
        URL, {"contact": contact.pk, "text": "Hi", "metadata": {"order_ref": "A-1", "data": {"x": 1}}}, format="json"
    )
    assert response.status_code == 201, response.content
    assert OutboxMessage.objects.get().metadata == {"order_ref": "A-1", "data": {"x": 1}}


def test_analytics_page_survives_a_legacy_message_with_a_forged_campaign_id(client, marketer, world, days_ago):  # noqa: F811
    # given messages stored before the API refused it, one with campaign_id "a/b"
    world.message(day=days_ago(0), campaign_id="a/b")
    world.message(day=days_ago(0), campaign_id=42)
    roll_up_recent(days=1)
    # and a rollup row written before the rollup checked it
    DailyStat.objects.create(day=days_ago(1), channel="email", campaign_id="x/../y", sent=3)
    client.force_login(marketer)
    for url in ("/admin/analytics/", "/admin/analytics/export/campaign_id/", "/admin/analytics/campaigns/42/"):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get("/admin/analytics/").content.decode()
    assert "/admin/analytics/campaigns/42/" in page and "a/b" not in page and "x/../y" not in page
    assert not DailyStat.objects.filter(campaign_id="a/b").exists()


def test_analytics_api_breakdown_survives_a_forged_campaign_id(marketer, world, days_ago):  # noqa: F811
    world.message(day=days_ago(0), campaign_id="a/b")
    DailyStat.objects.create(day=days_ago(0), channel="email", campaign_id="x/../y", sent=3)
    roll_up_recent(days=1)
    response = as_user(marketer).get("/api/v1/analytics/campaigns/")
    assert response.status_code == 200, response.content
    assert [row["campaign_id"] for row in response.json()] == []
