"""JWT for console users, API keys for integrations; both follow the roles."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from messaging.api_keys import create_api_key, hash_secret, revoke_api_key
from messaging.errors import InvalidInput
from messaging.models import ApiKey, AuditEntry
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db
CONTACTS = "/api/v1/contacts/"


def test_console_user_gets_a_jwt_pair_and_uses_it(api, support):
    response = api.post("/api/v1/auth/token/", {"username": "support", "password": "pw-support"})
    assert response.status_code == 200
    tokens = response.json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api.get(CONTACTS).status_code == 200
    refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200 and refreshed.json()["access"]


def test_wrong_password_is_a_401_problem(api, support):
    assert_problem(api.post("/api/v1/auth/token/", {"username": "support", "password": "nope"}), 401, "no_active_account")


def test_token_request_without_fields_names_them(api):
    body = assert_problem(api.post("/api/v1/auth/token/", {}), 400, "invalid")
    assert set(body["fields"]) == {"username", "password"}


def test_tampered_jwt_is_a_401(api, support):
    access = api.post("/api/v1/auth/token/", {"username": "support", "password": "pw-support"}).json()["access"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access[:-4]}AAAA")
    assert_problem(api.get(CONTACTS), 401, "token_not_valid")


def test_api_key_acts_with_its_role(key_client):
    support_key = key_client("Support")
    assert support_key.get(CONTACTS).status_code == 200
    # Support has no right to create contacts: the key has none either
    assert_problem(support_key.post(CONTACTS, {"email": "x@example.com"}), 403)


def test_api_key_secret_is_stored_hashed_and_shown_once(admin_user):
    created = create_api_key(actor=admin_user, name="Shop", role=Group.objects.get(name="Ops"))
    prefix, secret = created.token.split(".")
    key = ApiKey.objects.get(pk=created.key.pk)
    assert key.prefix == prefix and key.secret_hash == hash_secret(secret)
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().first())
    assert not key.user.has_usable_password() and not key.user.is_staff
    entry = AuditEntry.objects.get(verb="created", target_type="messaging.apikey")
    assert entry.actor == admin_user and entry.changes == {"role": {"before": None, "after": "Ops"}}


def test_api_key_with_a_bad_rate_is_refused(admin_user):
    with pytest.raises(InvalidInput) as error:
        create_api_key(actor=admin_user, name="Shop", role=Group.objects.get(name="Ops"), rate="lots")
    assert set(error.value.fields) == {"rate"}
    assert not ApiKey.objects.exists()


def test_revoked_api_key_is_a_401_and_audited(api_key, admin_user):
    key, token = api_key("Ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {token}")
    assert client.get(CONTACTS).status_code == 200
    revoke_api_key(actor=admin_user, key=key)
    body = assert_problem(client.get(CONTACTS), 401, "api_key_revoked")
    assert body["detail"] == "This API key has been revoked."
    assert AuditEntry.objects.filter(verb="revoked", target_id=str(key.pk), actor=admin_user).exists()
    key.user.refresh_from_db()
    assert not key.user.is_active


@pytest.mark.parametrize("header", ["Api-Key nope.nope", "Api-Key", "Api-Key a b", "Api-Key missingdot"])
def test_unknown_or_malformed_api_key_is_a_401(api, api_key, header):
    api_key("Ops")
    api.credentials(HTTP_AUTHORIZATION=header)
    assert_problem(api.get(CONTACTS), 401)


def test_wrong_secret_for_a_real_prefix_is_a_401(api, api_key):
    _key, token = api_key("Ops")
    prefix = token.split(".")[0]
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {prefix}.wrong-secret")
    assert_problem(api.get(CONTACTS), 401, "api_key_rejected")


def test_api_key_use_is_recorded(api_key):
    key, token = api_key("Ops")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {token}")
    client.get(CONTACTS)
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_actions_through_an_api_key_are_audited_as_the_key(key_client, newsletter):
    client = key_client("Marketer", name="CRM sync")
    response = client.post(CONTACTS, {"email": "lin@example.com"})
    assert response.status_code == 201
    entry = AuditEntry.objects.get(verb="created", target_type="messaging.contact")
    assert entry.actor.api_key.name == "CRM sync"


def test_changing_the_password_ends_earlier_tokens(api, support):
    access = api.post("/api/v1/auth/token/", {"username": "support", "password": "pw-support"}).json()["access"]
    support.set_password("a-new-long-password")
    support.save()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert_problem(api.get(CONTACTS), 401)


def test_a_deactivated_user_loses_api_access(api, support):
    access = api.post("/api/v1/auth/token/", {"username": "support", "password": "pw-support"}).json()["access"]
    support.is_active = False
    support.save()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert_problem(api.get(CONTACTS), 401)
