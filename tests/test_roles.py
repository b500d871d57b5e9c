"""Each role sees and can change only what it should, checked through the console URLs."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from messaging.models import AuditEntry, Contact, Suppression

pytestmark = pytest.mark.django_db

CONTACTS = "/admin/messaging/contact/"
AUDIT = "/admin/messaging/auditentry/"
SUPPRESSIONS = "/admin/messaging/suppression/"
USERS = "/admin/auth/user/"


def test_every_role_exists_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Marketer", "Approver", "Ops", "Support", "Admin"}


def test_setup_roles_is_idempotent_and_restores_removed_permissions():
    marketer = Group.objects.get(name="Marketer")
    before = set(marketer.permissions.values_list("codename", flat=True))
    marketer.permissions.clear()
    call_command("setup_roles", stdout=io.StringIO())
    call_command("setup_roles", stdout=io.StringIO())
    assert set(marketer.permissions.values_list("codename", flat=True)) == before
    assert Group.objects.filter(name="Marketer").count() == 1


@pytest.mark.parametrize(
    ("role", "url", "status"),
    [
        ("marketer", CONTACTS, 200),
        ("marketer", CONTACTS + "add/", 200),
        ("marketer", AUDIT, 403),
        ("marketer", USERS, 403),
        ("approver", CONTACTS, 200),
        ("approver", CONTACTS + "add/", 403),
        ("approver", SUPPRESSIONS + "add/", 403),
        ("ops", SUPPRESSIONS + "add/", 200),
        ("ops", AUDIT, 200),
        ("ops", CONTACTS + "add/", 403),
        ("support", CONTACTS + "add/", 403),
        ("support", SUPPRESSIONS + "add/", 200),
        ("support", AUDIT, 200),
        ("support", USERS, 403),
        ("admin_user", USERS, 200),
        ("admin_user", AUDIT, 200),
    ],
)
def test_role_can_open_only_its_pages(client, request, role, url, status):
    client.force_login(request.getfixturevalue(role))
    assert client.get(url).status_code == status


def test_approver_cannot_change_a_contact(client, approver, contact):
    client.force_login(approver)
    response = client.post(f"{CONTACTS}{contact.pk}/change/", {"email": "hacked@example.com", "locale": "en", "timezone": "UTC"})
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.email == "ada@example.com"


def test_support_can_fix_a_contact_and_it_is_audited(client, support, contact):
    client.force_login(support)
    response = client.post(
        f"{CONTACTS}{contact.pk}/change/",
        {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "locale": "fr",
            "timezone": "Europe/Paris",
            "attributes": "{}",
            "push_tokens": "[]",
            "subscriptions-TOTAL_FORMS": "0",
            "subscriptions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    contact.refresh_from_db()
    assert contact.last_name == "Lovelace"
    entry = AuditEntry.objects.get(verb="updated", actor=support)
    assert entry.changes == {"last_name": {"before": "", "after": "Lovelace"}}


def test_marketer_cannot_suppress_addresses(client, marketer):
    client.force_login(marketer)
    response = client.post(SUPPRESSIONS + "add/", {"address": "x@y.com", "channel": "email", "reason": "manual"})
    assert response.status_code == 403
    assert not Suppression.objects.exists()


def test_sidebar_hides_what_the_role_cannot_open(client, marketer, ops):
    client.force_login(marketer)
    page = client.get("/admin/").content.decode()
    assert CONTACTS in page and AUDIT not in page
    client.force_login(ops)
    assert AUDIT in client.get("/admin/").content.decode()


def test_non_staff_cannot_enter_the_console(client, db):
    from django.contrib.auth.models import User

    user = User.objects.create_user("customer", password="x")
    client.force_login(user)
    response = client.get(CONTACTS)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Contact.objects.count() == 0
