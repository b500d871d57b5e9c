"""The console page for API keys: create shows the secret once, revoke is a POST action."""

import pytest
from django.contrib.auth.models import Group

from messaging.models import ApiKey, AuditEntry

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/messaging/apikey/"


def test_admin_creates_a_key_and_sees_the_secret_once(client, admin_user):
    client.force_login(admin_user)
    ops = Group.objects.get(name="Ops")
    response = client.post(f"{CHANGELIST}add/", {"name": "Warehouse", "role": ops.pk, "rate": "100/min"})
    assert response.status_code == 200
    key = ApiKey.objects.get(name="Warehouse")
    token = response.context["token"]
    assert token.startswith(key.prefix + ".")
    assert token in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert key.rate == "100/min" and key.created_by == admin_user
    # afterwards the key's page shows the prefix, never the secret
    detail = client.get(f"{CHANGELIST}{key.pk}/change/").content.decode()
    assert key.prefix in detail and token.split(".")[1] not in detail


def test_a_badly_written_rate_stays_on_the_form(client, admin_user):
    client.force_login(admin_user)
    ops = Group.objects.get(name="Ops")
    response = client.post(f"{CHANGELIST}add/", {"name": "Warehouse", "role": ops.pk, "rate": "fast"})
    assert response.status_code == 200
    assert "e.g. 600/min" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_action_revokes_and_audits(client, admin_user, api_key):
    key, _token = api_key("Ops")
    client.force_login(admin_user)
    response = client.post(CHANGELIST, {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == admin_user
    assert AuditEntry.objects.filter(verb="revoked", target_id=str(key.pk)).exists()


def test_roles_without_the_permission_cannot_create_keys(client, ops):
    client.force_login(ops)
    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_sidebar_links_the_api_docs_and_keys(client, admin_user):
    client.force_login(admin_user)
    page = client.get("/admin/").content.decode()
    assert "/api/v1/docs/" in page and CHANGELIST in page


def test_posting_the_add_form_twice_makes_one_key_and_shows_its_secret_once(client, admin_user):
    # given the add form as rendered, with its submission id
    client.force_login(admin_user)
    submission = client.get(f"{CHANGELIST}add/").context["adminform"].form["submission"].value()
    form = {"name": "Warehouse", "role": Group.objects.get(name="Ops").pk, "rate": "100/min", "submission": submission}
    first = client.post(f"{CHANGELIST}add/", form)
    token = first.context["token"]
    # when the browser posts it again (a reload of the page showing the key, a double click)
    again = client.post(f"{CHANGELIST}add/", form)
    # then no second key is made and the key is not shown again
    assert again.status_code == 200 and "no second key was created" in again.content.decode()
    assert token not in again.content.decode() and token.split(".")[1] not in again.content.decode()
    assert ApiKey.objects.count() == 1
    # a form with an error frees its id: corrected, the same form is saved
    fresh = client.get(f"{CHANGELIST}add/").context["adminform"].form["submission"].value()
    assert fresh != submission
    refused = client.post(f"{CHANGELIST}add/", {**form, "name": "Till", "rate": "fast", "submission": fresh})
    assert "e.g. 600/min" in refused.content.decode()
    assert client.post(f"{CHANGELIST}add/", {**form, "name": "Till", "submission": fresh}).context["token"]
    assert ApiKey.objects.count() == 2
