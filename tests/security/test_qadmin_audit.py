"""Issue 16, item 19: giving a user the Admin role was audited only as a `last_login` change.

Role (group) membership and permission changes are audited whichever way they are made
(user page, role page, code), with who did it; so are API keys, providers and schedules.
No audit entry holds a secret value."""

import json

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from accounts.roles import setup_roles
from messaging.audit import acting_as, record_audit
from messaging.models import ApiKey, AuditEntry, Provider

pytestmark = pytest.mark.django_db

USERS = "/admin/auth/user/"
GROUPS = "/admin/auth/group/"
PROVIDERS = "/admin/messaging/provider/"
API_KEYS = "/admin/messaging/apikey/"
INLINE_SECRET = "sk_live_0123456789abcdefSECRET"


def all_audit_text() -> str:
    return json.dumps(list(AuditEntry.objects.values("verb", "target_repr", "changes")), default=str)


def user_form(user: User, *, groups: list[Group]) -> dict:
    joined = timezone.localtime(user.date_joined)
    return {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [group.pk for group in groups],
        "user_permissions": [],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }


def test_granting_the_admin_role_in_the_user_page_is_audited_as_a_role_change(client, admin_user, support):
    admin_role, support_role = Group.objects.get(name="Admin"), Group.objects.get(name="Support")
    client.force_login(admin_user)
    response = client.post(f"{USERS}{support.pk}/change/", user_form(support, groups=[support_role, admin_role]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert support.groups.filter(name="Admin").exists()
    entry = AuditEntry.objects.get(verb="roles_changed", target_type="auth.user", target_id=str(support.pk), actor=admin_user)
    assert entry.changes == {"groups": {"before": ["Support"], "after": ["Admin", "Support"]}}


def test_the_user_page_no_longer_reports_a_role_grant_as_a_last_login_change(client, admin_user, support):
    client.force_login(admin_user)
    client.post(f"{USERS}{support.pk}/change/", user_form(support, groups=[Group.objects.get(name="Admin")]))
    assert not any("last_login" in entry.changes for entry in AuditEntry.objects.filter(target_type="auth.user"))


def test_removing_a_role_in_code_is_audited_without_an_actor(support):
    support.groups.remove(Group.objects.get(name="Support"))
    entry = AuditEntry.objects.filter(verb="roles_changed", target_id=str(support.pk)).latest("pk")
    assert entry.actor is None
    assert entry.changes == {"groups": {"before": ["Support"], "after": []}}


def test_adding_a_member_from_the_role_side_is_audited_on_the_user(admin_user, marketer):
    with acting_as(admin_user):
        Group.objects.get(name="Admin").user_set.add(marketer)
    entry = AuditEntry.objects.filter(verb="roles_changed", target_id=str(marketer.pk)).latest("pk")
    assert entry.actor == admin_user
    assert entry.changes == {"groups": {"before": ["Marketer"], "after": ["Admin", "Marketer"]}}


def test_clearing_a_users_roles_is_audited(support):
    support.groups.clear()
    entry = AuditEntry.objects.filter(verb="roles_changed", target_id=str(support.pk)).latest("pk")
    assert entry.changes == {"groups": {"before": ["Support"], "after": []}}


def test_giving_a_role_a_permission_in_the_role_page_is_audited(client, admin_user):
    ops = Group.objects.get(name="Ops")
    wanted = [*ops.permissions.all(), Permission.objects.get(codename="add_apikey")]
    client.force_login(admin_user)
    response = client.post(f"{GROUPS}{ops.pk}/change/", {"name": "Ops", "permissions": [perm.pk for perm in wanted]})
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.get(verb="permissions_changed", target_type="auth.group", target_id=str(ops.pk))
    assert entry.actor == admin_user
    assert entry.changes == {"permissions": {"added": ["messaging.add_apikey"], "removed": []}}


def test_giving_a_user_a_permission_directly_is_audited(support):
    support.user_permissions.add(Permission.objects.get(codename="change_provider"))
    entry = AuditEntry.objects.get(verb="permissions_changed", target_type="auth.user", target_id=str(support.pk))
    assert entry.changes == {"user_permissions": {"added": ["messaging.change_provider"], "removed": []}}


def test_a_change_that_changes_nothing_writes_no_entry(support):
    before = AuditEntry.objects.count()
    support.groups.add(Group.objects.get(name="Support"))
    support.groups.remove(Group.objects.get(name="Admin"))
    assert AuditEntry.objects.count() == before


def test_applying_the_role_table_again_writes_no_entry():
    before = AuditEntry.objects.count()
    setup_roles()
    assert AuditEntry.objects.count() == before


def test_the_role_table_restoring_a_removed_permission_is_audited():
    marketer = Group.objects.get(name="Marketer")
    marketer.permissions.remove(Permission.objects.get(codename="view_contact"))
    setup_roles()
    entry = AuditEntry.objects.filter(verb="permissions_changed", target_id=str(marketer.pk)).latest("pk")
    assert entry.changes == {"permissions": {"added": ["messaging.view_contact"], "removed": []}}


# --- API keys ------------------------------------------------------------------------------
def test_creating_and_revoking_an_api_key_is_audited_without_its_secret(client, admin_user):
    client.force_login(admin_user)
    response = client.post(f"{API_KEYS}add/", {"name": "Warehouse", "role": Group.objects.get(name="Ops").pk, "rate": ""})
    token = response.context["token"]
    key = ApiKey.objects.get(name="Warehouse")
    created = AuditEntry.objects.get(verb="created", target_type="messaging.apikey", target_id=str(key.pk))
    assert created.actor == admin_user
    client.post(API_KEYS, {"action": "revoke_keys", "_selected_action": [key.pk]})
    revoked = AuditEntry.objects.get(verb="revoked", target_type="messaging.apikey", target_id=str(key.pk))
    assert revoked.actor == admin_user
    # the key's service user got its role: audited, with the person who created the key
    grant = AuditEntry.objects.get(verb="roles_changed", target_id=str(key.user_id))
    assert grant.actor == admin_user and grant.changes["groups"]["after"] == ["Ops"]
    text = all_audit_text()
    assert token.split(".")[1] not in text and key.secret_hash not in text


# --- providers -----------------------------------------------------------------------------
def provider_form(**config) -> dict:
    return {
        "name": "ESP",
        "channel": "email",
        "kind": "anymail",
        "priority": "10",
        "is_active": "on",
        "config": json.dumps(config),
        "rate_per_second": "",
        "rate_per_hour": "",
    }


def test_changing_a_provider_is_audited_without_its_secret_values(client, admin_user):  # configuring: Admin only
    provider = Provider.objects.create(
        name="ESP", channel="email", kind="anymail", config={"backend": "anymail.backends.test.EmailBackend"}
    )
    client.force_login(admin_user)
    config = {
        "backend": "anymail.backends.test.EmailBackend",
        "options": {"api_key": INLINE_SECRET},
        "dkim": {"selector": "s1", "domain": "example.com", "private_key": INLINE_SECRET},
        "password": INLINE_SECRET,
        "webhook_secret": INLINE_SECRET,
        "sender": "news@example.com",
    }
    response = client.post(f"{PROVIDERS}{provider.pk}/change/", provider_form(**config))
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.get(verb="updated", target_type="messaging.provider", target_id=str(provider.pk))
    assert entry.actor == admin_user
    assert entry.changes["config"]["after"]["sender"] == "news@example.com"  # what is not secret stays readable
    assert INLINE_SECRET not in all_audit_text()


def test_creating_a_provider_with_a_secret_is_audited_without_it(client, admin_user):
    client.force_login(admin_user)
    response = client.post(f"{PROVIDERS}add/", provider_form(backend="anymail.backends.test.EmailBackend", token_secret=INLINE_SECRET))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AuditEntry.objects.filter(verb="created", target_type="messaging.provider", actor=admin_user).exists()
    assert INLINE_SECRET not in all_audit_text()


def test_no_audit_entry_holds_a_secret_whatever_writes_it(admin_user):
    record_audit(
        actor=admin_user,
        verb="updated",
        target_type="test",
        changes={
            "password": {"before": "a", "after": INLINE_SECRET},
            "config": {"before": {}, "after": {"nested": {"apiKey": INLINE_SECRET}}},
        },
    )
    assert INLINE_SECRET not in all_audit_text()
